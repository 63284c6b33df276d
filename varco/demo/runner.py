"""``varco demo``: broker, gateway, API and simulated devices in one process."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from amqtt.broker import Broker

from edge_agent.agent import Agent
from edge_agent.config import (
    BrokerConfig,
    DeskConfig,
    DoorConfig,
    EdgeConfig,
    PressureMatDeskConfig,
    Secret,
)
from gateway.api import create_app
from gateway.api.server import ApiServer
from gateway.service import Gateway
from gateway.settings import Settings
from gateway.store import Store
from varco.demo.simulation import People
from varco.demo.space import DESK_NODE, DESKS, DOORS, SITE, Seeded, seed
from varco.demo.summary import Summary

log = logging.getLogger(__name__)

TALLY_EVERY_SECONDS = 5.0
# A stop takes about a second; past this, the demo says what is stuck and exits anyway.
STOP_SECONDS = 8.0
# Door pins (relay, contact) and desk pins on each simulated Pi's header, BCM numbering.
DOOR_PINS = {"front-door": (17, 27), "office-door": (22, 23)}
DESK_PINS = (5, 6, 12, 13, 16, 19)


@dataclass(frozen=True, slots=True)
class DemoOptions:
    api_port: int = 8000
    mqtt_port: int | None = None
    duration: float | None = None
    data_dir: Path | None = None
    seed: int | None = None


class DemoError(Exception):
    """The demo cannot start (a port in use, a folder that cannot be written)."""


def run_demo(options: DemoOptions) -> int:
    """Run the demo until Ctrl-C or ``options.duration``; return the exit status."""
    try:
        asyncio.run(_demo(options))
    except DemoError as exc:
        print(f"varco demo: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


async def _demo(options: DemoOptions) -> None:
    _ensure_free(options.api_port, "--port")
    mqtt_port = options.mqtt_port or _free_port()
    _ensure_free(mqtt_port, "--mqtt-port")
    with _data_dir(options.data_dir) as data_dir:
        # Each run starts afresh: a new database, and devices with empty outboxes.
        database = data_dir / "varco-demo.db"
        database.unlink(missing_ok=True)
        shutil.rmtree(data_dir / "devices", ignore_errors=True)
        with Store(f"sqlite:///{database}") as store:
            seeded = await asyncio.to_thread(seed, store)

        _quiet_libraries()
        broker = Broker(_broker_config(mqtt_port))
        await broker.start()
        try:
            await _run(options, mqtt_port, data_dir, seeded)
        finally:
            await broker.shutdown()


async def _run(options: DemoOptions, mqtt_port: int, data_dir: Path, seeded: Seeded) -> None:
    database = data_dir / "varco-demo.db"
    settings = Settings(
        database_url=f"sqlite:///{database}",
        mqtt_port=mqtt_port,
        gateway_id="demo-gateway",
        share_group=None,  # amqtt has no shared subscriptions; there is one gateway
        api_port=options.api_port,
    )
    gateway = Gateway(settings)
    server = ApiServer(
        uvicorn.Config(
            create_app(gateway),
            host="127.0.0.1",
            port=options.api_port,
            log_level="warning",
            timeout_graceful_shutdown=2,  # a slow client must not hold a stop for long
        ),
        gateway,
        own_signals=False,  # the demo, not uvicorn, owns Ctrl-C
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    rng = random.Random(options.seed)
    summary = Summary(gateway.occupancy)
    if gateway.ingest is not None:
        gateway.ingest.observers.append(summary.on_message)

    def device(device_id: str) -> dict[str, Any]:
        return {
            "device_id": device_id,
            "site": SITE,
            "broker": BrokerConfig(port=mqtt_port),
            "pin_factory": "mock",
            "state_dir": data_dir / "devices" / device_id,
            "allowlist_key": Secret(seeded.allowlist_keys[device_id]),
        }

    doors = [
        Agent(EdgeConfig(**device(controller), doors=[_door(door)]))
        for door, controller in DOORS.items()
    ]
    desks = Agent(EdgeConfig(**device(DESK_NODE), desks=_desks()))
    people = People(doors, desks, rng)

    async with asyncio.TaskGroup() as tasks:
        serving = tasks.create_task(server.serve(), name="api")
        while not server.started:
            if serving.done():
                raise DemoError(f"the API could not start on port {options.api_port}")
            await asyncio.sleep(0.05)
        _banner(options, mqtt_port, database, seeded.admin_token)
        background = []
        for agent in [*doors, desks]:
            ready = asyncio.Event()
            background.append(tasks.create_task(agent.run(ready)))
            await ready.wait()
            await agent.link.connected.wait()
        for agent in doors:
            for door in agent.doors.values():
                door.outcomes.append(summary.on_outcome)
                door.outcomes.append(functools.partial(people.walk_through, agent))
        background += [
            tasks.create_task(people.tap_at_random()),
            tasks.create_task(people.sit_and_leave()),
            tasks.create_task(_tally(summary)),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=options.duration)
        print("\nstopping...", flush=True)
        _stop_within(STOP_SECONDS, asyncio.get_running_loop())
        for task in reversed(background):
            task.cancel()
        server.should_exit = True
    summary.print_tally()


def _stop_within(seconds: float, loop: asyncio.AbstractEventLoop) -> None:
    """Exit with status 1 if the demo has not stopped ``seconds`` from now, saying why."""

    def overdue() -> None:
        stuck = [task for task in asyncio.all_tasks(loop) if not task.done()]
        print(
            f"varco demo: not stopped after {seconds:g}s; exiting anyway. Still running:",
            file=sys.stderr,
            flush=True,
        )
        for task in stuck:
            task.print_stack(limit=8, file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)  # SQLite keeps what was committed; the rest is a simulation

    timer = threading.Timer(seconds, overdue)
    timer.daemon = True
    timer.start()


def _door(door: str) -> DoorConfig:
    relay, contact = DOOR_PINS[door]
    # A short held-open time, so that the odd member who props the door shows the alarm.
    return DoorConfig(
        id=door, relay_pin=relay, contact_pin=contact, unlock_seconds=3.0, held_open_seconds=5.0
    )


def _desks() -> list[DeskConfig]:
    return [
        PressureMatDeskConfig(id=desk, pin=pin, settle_seconds=0)
        for desk, pin in zip(DESKS, DESK_PINS, strict=True)
    ]


async def _tally(summary: Summary) -> None:
    while True:
        await asyncio.sleep(TALLY_EVERY_SECONDS)
        summary.print_tally()


def _banner(options: DemoOptions, mqtt_port: int, database: Path, token: str) -> None:
    url = f"http://127.0.0.1:{options.api_port}"
    lines = [
        "Varco demo: two doors and six desks, members tapping at random.",
        f"  live page    {url}/live   (desks, doors, who's in)",
        f"  admin API    {url}   (docs: {url}/docs)",
        f"  admin token  {token}",
        f"  try          curl -H 'Authorization: Bearer {token}' {url}/access-events",
        f"  MQTT broker  127.0.0.1:{mqtt_port} (embedded)",
        f"  database     {database}",
        "  stop         Ctrl-C" + (f", or after {options.duration:g}s" if options.duration else ""),
        "",
    ]
    print("\n".join(lines), flush=True)


def _broker_config(port: int) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }


def _quiet_libraries() -> None:
    for name in ("amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ensure_free(port: int, flag: str) -> None:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise DemoError(f"port {port} is in use; choose another with {flag}") from None


@contextlib.contextmanager
def _data_dir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="varco-demo-") as tmp:
        yield Path(tmp)
