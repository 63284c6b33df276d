"""The edge agent: readers, relays and sensors wired to the MQTT link; lifetimes nest in ``run``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from edge_agent.cache import AllowlistCache
from edge_agent.config import DeskConfig, EdgeConfig
from edge_agent.desks import DeskSensor, open_desk_sensor
from edge_agent.door import Door, Outcome, new_event_id
from edge_agent.errors import NotConnectedError
from edge_agent.hardware import PinFactory, mock_factory
from edge_agent.link import Link
from edge_agent.outbox import Outbox
from edge_agent.readers import SimulatedReader
from edge_agent.remote_config import RemoteConfig, RestartError
from edge_agent.tap_socket import SOCKET_NAME, TapSocket
from varco import protocol
from varco.protocol import Channel, Command, CommandAction, DeskEvent

log = logging.getLogger(__name__)

__all__ = ["Agent", "Desk", "Door", "Outcome", "pin_factory_for"]


def pin_factory_for(config: EdgeConfig) -> PinFactory:
    """Choose the gpiozero pin factory: the one place it is decided."""
    if config.pin_factory == "mock" or os.environ.get("GPIOZERO_PIN_FACTORY") == "mock":
        contacts = [door.contact_pin for door in config.doors if door.contact_pin is not None]
        return mock_factory(closed_switches=contacts)  # the doors start shut
    return None  # gpiozero picks the Pi's own: lgpio (the [pi] extra), on every model


class Desk:
    """A desk and its occupancy sensor (pressure mat, PIR or ultrasonic)."""

    def __init__(self, config: DeskConfig, link: Link, pin_factory: PinFactory) -> None:
        self.config = config
        self._link = link
        self.sensor: DeskSensor = open_desk_sensor(
            config, pin_factory=pin_factory, on_change=self.report
        )

    def report(self, occupied: bool) -> None:
        """Send the desk's state; sensors call it on every change."""
        event = DeskEvent(
            event_id=new_event_id(), desk=self.config.id, occupied=occupied, at=protocol.utcnow()
        )
        self._link.send(Channel.DESK, event)

    def close(self) -> None:
        self.sensor.close()


class Agent:
    """One device's doors and desks. ``await agent.run()`` until cancelled."""

    def __init__(self, config: EdgeConfig, *, pin_factory: PinFactory = None) -> None:
        # The gateway's overrides of the file (the config channel), the last good ones kept.
        self.remote = RemoteConfig(config, config.state_dir / "remote-config.json")
        config = self.remote.start()
        self.config = config
        self.pin_factory = pin_factory if pin_factory is not None else pin_factory_for(config)
        key = config.allowlist_key
        self.outbox = Outbox(config.state_dir / "outbox.db", max_events=config.outbox_max_events)
        self.cache = AllowlistCache(
            config.state_dir / "allowlist.json",
            bytes.fromhex(key.get_secret_value()) if key else None,
        )
        self.link = Link(config, self.outbox, self.cache, started_at=protocol.utcnow())
        self.link.on_command = self._on_command
        self.link.on_allowlist = self._on_allowlist
        # A config pushed on the config channel, and what became of it in each status.
        self.link.on_config = self.remote.receive
        self.link.config_state = lambda: (self.remote.applied_version, self.remote.error)
        self.doors: dict[str, Door] = {}
        self.desks: dict[str, Desk] = {}
        self.tap_socket: TapSocket | None = None  # with a simulated reader: varco edge tap

    async def run(self, ready: asyncio.Event | None = None) -> None:
        """Open the hardware, connect, serve the readers; close everything on the way out."""
        with contextlib.ExitStack() as hardware:
            hardware.enter_context(self.outbox)
            for door_config in self.config.doors:
                door = Door(door_config, self.link, self.outbox, self.cache, self.pin_factory)
                hardware.callback(door.close)
                self.doors[door_config.id] = door
            self.remote.attach(self.doors)
            for desk_config in self.config.desks:
                desk = Desk(desk_config, self.link, self.pin_factory)
                hardware.callback(desk.close)
                self.desks[desk_config.id] = desk
                desk.report(desk.sensor.occupied)  # sensors report changes; say where we start
            async with contextlib.AsyncExitStack() as local:
                if any(isinstance(door.reader, SimulatedReader) for door in self.doors.values()):
                    path = self.config.state_dir / SOCKET_NAME
                    self.tap_socket = await local.enter_async_context(TapSocket(path, self.doors))
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self.link.run(), name="link")
                    tasks.create_task(self._heartbeat(), name="heartbeat")
                    tasks.create_task(self._restart_when_due(), name="remote-config")
                    for door in self.doors.values():
                        tasks.create_task(door.serve(), name=f"door-{door.config.id}")
                        tasks.create_task(door.keep_office_hours(), name=f"hours-{door.config.id}")
                    if ready is not None:
                        ready.set()

    def _on_command(self, command: Command) -> None:
        doors = (
            [self.doors[command.door]]
            if command.door in self.doors
            else list(self.doors.values())
            if command.door is None
            else []
        )
        if not doors:
            log.warning("command %s names an unknown door %r", command.command_id, command.door)
        for door in doors:
            if command.action is CommandAction.UNLOCK:
                door.unlock(command.seconds)
            else:
                door.identify()
        log.info("command %s: %s %s", command.command_id, command.action.value, command.door)

    def _on_allowlist(self) -> None:
        for door in self.doors.values():
            door.apply_lockdown()

    async def _restart_when_due(self) -> None:
        await self.remote.restart.wait()
        raise RestartError(
            f"stopping to start again with config {self.remote.applied_version}: a door's "
            "held-open time or reader hold-off changed"
        )

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.config.status_interval_seconds)
            with contextlib.suppress(NotConnectedError):
                await self.link.publish_status()
