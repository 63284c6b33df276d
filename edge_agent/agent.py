"""The edge agent: readers, relays and sensors wired to the MQTT link; lifetimes nest in ``run``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.cache import AllowlistCache, OfflineVerdict
from edge_agent.config import DeskConfig, DoorConfig, EdgeConfig, PressureMatDeskConfig
from edge_agent.errors import NotConnectedError
from edge_agent.hardware import Contact, DoorRelay, PinFactory, mock_factory
from edge_agent.link import Link
from edge_agent.outbox import Outbox
from edge_agent.readers import Reader, open_reader
from varco import protocol
from varco.protocol import (
    Channel,
    Credential,
    DeskEvent,
    DoorEvent,
    DoorState,
    OfflineDecision,
    Tap,
)

log = logging.getLogger(__name__)


def new_event_id() -> str:
    """Make an event id here, where the event happened (DESIGN invariant 2)."""
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the door did about one tap, for logs, tests and the demo."""

    door: str
    uid: str
    event_id: str
    granted: bool
    reason: str
    answered: bool


def pin_factory_for(config: EdgeConfig) -> PinFactory:
    """Choose the gpiozero pin factory: the one place it is decided."""
    if config.pin_factory == "mock" or os.environ.get("GPIOZERO_PIN_FACTORY") == "mock":
        return mock_factory()
    return None  # gpiozero picks the Pi's own (lgpio, RPi.GPIO, ...)


class Door:
    """A reader, a relay and optionally a door contact."""

    def __init__(
        self,
        config: DoorConfig,
        link: Link,
        outbox: Outbox,
        cache: AllowlistCache,
        pin_factory: PinFactory,
    ) -> None:
        self.config = config
        self._link = link
        self._outbox = outbox
        self._cache = cache
        self.reader: Reader = open_reader(config.reader)
        self.relay = DoorRelay(
            config.relay_pin, active_high=config.relay_active_high, pin_factory=pin_factory
        )
        self.contact: Contact | None = None
        if config.contact_pin is not None:
            self.contact = Contact(
                config.contact_pin, on_change=self._on_contact, pin_factory=pin_factory
            )
        self.outcomes: list[Callable[[Outcome], None]] = []

    async def serve(self) -> None:
        """Turn every card at the reader into a decision and, if granted, an unlock."""
        while True:
            uid = await self.reader.read()
            await self.tap(uid)

    async def tap(self, uid: str) -> Outcome:
        tap = Tap(
            event_id=new_event_id(),
            door=self.config.id,
            credential=Credential(value=uid),
            at=protocol.utcnow(),
        )
        answer = await self._link.ask(tap, self.config.decision_timeout_seconds)
        decision = answer.decision
        if decision is not None:
            granted, reason, seconds = decision.granted, decision.reason, decision.unlock_seconds
        else:
            verdict = self._cache.decide(
                self.config.id,
                tap.credential,
                fail_mode=self.config.fail_mode,
                unlock_seconds=self.config.unlock_seconds,
            )
            granted, reason, seconds = verdict.granted, verdict.reason, verdict.unlock_seconds
            self._record_offline(tap, answer.seq, verdict)
        if granted:
            self.relay.pulse(seconds)
        outcome = Outcome(
            self.config.id, uid, tap.event_id, granted, reason.value, decision is not None
        )
        for listener in self.outcomes:
            listener(outcome)
        return outcome

    def _record_offline(self, tap: Tap, seq: int, verdict: OfflineVerdict) -> None:
        # The tap waits in the outbox; rewrite it with what the door decided, or, if it has
        # already left, send the decided version after it (the gateway keeps the door's word).
        offline = tap.model_copy(
            update={
                "offline": OfflineDecision(
                    granted=verdict.granted,
                    reason=verdict.reason,
                    allowlist_version=verdict.allowlist_version,
                )
            }
        )
        if not self._outbox.replace(seq, protocol.encode(offline)):
            self._link.send(Channel.TAP, offline)
        log.warning(
            "door %s: no decision in %.2fs; decided offline: %s (%s)",
            self.config.id,
            self.config.decision_timeout_seconds,
            "granted" if verdict.granted else "denied",
            verdict.reason.value,
        )

    def _on_contact(self, closed: bool) -> None:
        state = DoorState.CLOSED if closed else DoorState.OPENED
        event = DoorEvent(
            event_id=new_event_id(), door=self.config.id, state=state, at=protocol.utcnow()
        )
        self._link.send(Channel.DOOR, event)

    def close(self) -> None:
        self.reader.close()
        self.relay.close()
        if self.contact is not None:
            self.contact.close()


class Desk:
    """A desk whose occupancy comes from a sensor switch (a pressure mat)."""

    def __init__(self, config: DeskConfig, link: Link, pin_factory: PinFactory) -> None:
        self.config = config
        self._link = link
        if not isinstance(config, PressureMatDeskConfig):
            raise NotImplementedError(f"desk sensor {config.sensor!r}")
        self.sensor = Contact(
            config.pin,
            on_change=self._on_change,
            pin_factory=pin_factory,
            bounce_seconds=config.bounce_seconds,
        )

    def _on_change(self, occupied: bool) -> None:
        event = DeskEvent(
            event_id=new_event_id(), desk=self.config.id, occupied=occupied, at=protocol.utcnow()
        )
        self._link.send(Channel.DESK, event)

    def close(self) -> None:
        self.sensor.close()


class Agent:
    """One device's doors and desks. ``await agent.run()`` until cancelled."""

    def __init__(self, config: EdgeConfig, *, pin_factory: PinFactory = None) -> None:
        self.config = config
        self.pin_factory = pin_factory if pin_factory is not None else pin_factory_for(config)
        key = config.allowlist_key
        self.outbox = Outbox(config.state_dir / "outbox.db", max_events=config.outbox_max_events)
        self.cache = AllowlistCache(
            config.state_dir / "allowlist.json",
            bytes.fromhex(key.get_secret_value()) if key else None,
        )
        self.link = Link(config, self.outbox, self.cache, started_at=protocol.utcnow())
        self.doors: dict[str, Door] = {}
        self.desks: dict[str, Desk] = {}

    async def run(self, ready: asyncio.Event | None = None) -> None:
        """Open the hardware, connect, serve the readers; close everything on the way out."""
        with contextlib.ExitStack() as hardware:
            hardware.enter_context(self.outbox)
            for door_config in self.config.doors:
                door = Door(door_config, self.link, self.outbox, self.cache, self.pin_factory)
                hardware.callback(door.close)
                self.doors[door_config.id] = door
            for desk_config in self.config.desks:
                desk = Desk(desk_config, self.link, self.pin_factory)
                hardware.callback(desk.close)
                self.desks[desk_config.id] = desk
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.link.run(), name="link")
                tasks.create_task(self._heartbeat(), name="heartbeat")
                for door in self.doors.values():
                    tasks.create_task(door.serve(), name=f"door-{door.config.id}")
                if ready is not None:
                    ready.set()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.config.status_interval_seconds)
            with contextlib.suppress(NotConnectedError):
                await self.link.publish_status()
