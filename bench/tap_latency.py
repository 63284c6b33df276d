"""Tap-to-decision round trip: ``python -m bench.tap_latency [--taps N]``.

Baseline: two bare paho clients on a private mosquitto; one publishes a request at QoS 1, the
other answers it at QoS 1, and the first times the round trip. Varco: a real gateway (SQLite
in a temporary folder) and a real edge agent (gpiozero's MockFactory) in this process, timing
``await door.tap(uid)`` for a granted badge: tap through the outbox, policy decision, decision
back, relay pulsed. Two more rows run both on a broker with Nagle's algorithm left on (no
``set_tcp_nodelay``), to show what that costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import paho.mqtt.client as mqtt

from bench.bare_client import TIMEOUT_SECONDS, BareClient
from bench.broker import Broker, private_mosquitto
from bench.figures import Latency, latency_table
from edge_agent.agent import Agent
from edge_agent.config import BrokerConfig, DoorConfig, EdgeConfig, Secret
from edge_agent.door import Door
from gateway.service import Gateway
from gateway.settings import Settings
from gateway.store import Store, models

SITE = "bench-site"
DEVICE = "door-ctl-bench"
DOOR = "front-door"
BADGE = "04A1B2C3D4"
RELAY_PIN = 17
WARMUP = 20
BLOCKS = 5
NAGLE_TAPS = 50  # each takes tens of ms: enough to show the cost, short enough to wait for
REQUEST_TOPIC = "bench/request"
REPLY_TOPIC = "bench/reply"


class PahoPair:
    """Two bare paho clients: an "edge" that asks and a "gateway" that echoes; a context manager."""

    def __init__(self, broker: Broker) -> None:
        self._stack = contextlib.ExitStack()
        self._broker = broker
        self._answered = threading.Event()
        self._payload = b'{"event_id":"0123456789abcdef0123456789abcdef","door":"front-door"}'

    def __enter__(self) -> PahoPair:
        gateway = self._stack.enter_context(BareClient(self._broker, "bench-gateway"))
        self._edge = self._stack.enter_context(BareClient(self._broker, "bench-edge"))
        gateway.paho.on_message = self._echo
        self._edge.paho.on_message = self._reply
        gateway.subscribe(REQUEST_TOPIC)
        self._edge.subscribe(REPLY_TOPIC)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def round_trips(self, count: int) -> list[float]:
        """Time ``count`` QoS 1 request/reply round trips, one at a time."""
        samples: list[float] = []
        for _ in range(count):
            self._answered.clear()
            start = time.perf_counter()
            self._edge.paho.publish(REQUEST_TOPIC, self._payload, qos=1)
            if not self._answered.wait(TIMEOUT_SECONDS):
                raise TimeoutError("the echo client did not answer")
            samples.append(time.perf_counter() - start)
        return samples

    def _echo(self, client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        client.publish(REPLY_TOPIC, message.payload, qos=1)

    def _reply(self, _client: mqtt.Client, _userdata: object, _message: mqtt.MQTTMessage) -> None:
        self._answered.set()


def seed(workdir: Path) -> str:
    """Create a door, a member with a badge for it, and the door's device; return its key.

    The database goes in ``workdir``, which must not exist yet.
    """
    workdir.mkdir()
    with Store(f"sqlite:///{workdir / 'varco.db'}") as store:
        store.create_schema()
        with store.session() as session:
            lobby = models.Zone(id="lobby", name="Lobby")
            session.add_all(
                [
                    models.Site(id=SITE, name="Bench", timezone="Europe/Rome"),
                    lobby,
                    models.Plan(id="hot-desk", name="Hot desk", zones=[lobby]),
                    models.Device(id=DEVICE, site=SITE, kind=models.DeviceKind.DOOR_CONTROLLER),
                ]
            )
            session.flush()
            member = models.Member(name="Ada Lovelace", plan_id="hot-desk")
            session.add_all(
                [
                    models.Door(
                        id=DOOR, name="Front", zone_id="lobby", device_id=DEVICE, unlock_seconds=1
                    ),
                    member,
                ]
            )
            session.flush()
            session.add(models.Badge(uid=BADGE, member_id=member.id))
        with store.session() as session:
            device = session.get(models.Device, DEVICE)
            assert device is not None
            return device.allowlist_key


@contextlib.asynccontextmanager
async def running_door(broker: Broker, workdir: Path, key: str) -> AsyncIterator[Door]:
    """Run a gateway on the store in ``workdir`` and a door controller; yield its door."""
    settings = Settings(
        database_url=f"sqlite:///{workdir / 'varco.db'}",
        mqtt_host=broker.host,
        mqtt_port=broker.port,
        gateway_id="gateway-bench",
        policy_refresh_seconds=3600,
        # One door tapped back to back, faster than any reader: not a flood to refuse.
        device_tap_rate=1e6,
    )
    config = EdgeConfig(
        device_id=DEVICE,
        site=SITE,
        broker=BrokerConfig(host=broker.host, port=broker.port),
        pin_factory="mock",
        state_dir=workdir / "edge",
        allowlist_key=Secret(key),
        doors=[DoorConfig(id=DOOR, relay_pin=RELAY_PIN)],
    )
    async with Gateway(settings) as gateway:
        assert gateway.ingest is not None
        await asyncio.wait_for(gateway.ingest.connected.wait(), TIMEOUT_SECONDS)
        agent = Agent(config)
        ready = asyncio.Event()
        task = asyncio.create_task(agent.run(ready))
        try:
            await asyncio.wait_for(ready.wait(), TIMEOUT_SECONDS)
            await asyncio.wait_for(agent.link.connected.wait(), TIMEOUT_SECONDS)
            yield agent.doors[DOOR]
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def taps(door: Door, count: int) -> list[float]:
    """Time ``count`` taps of the member's badge, one at a time; each must be granted."""
    samples: list[float] = []
    for i in range(count):
        start = time.perf_counter()
        outcome = await door.tap(BADGE)
        samples.append(time.perf_counter() - start)
        if not (outcome.granted and outcome.answered):
            raise RuntimeError(f"tap {i} was not granted by the gateway: {outcome}")
    return samples


async def compare(pair: PahoPair, door: Door, count: int) -> tuple[list[float], list[float]]:
    """Time ``count`` round trips of each, in alternating blocks after a warm-up.

    Alternating blocks spread a burst of load from elsewhere on the machine over both; the
    baseline runs on a worker thread while the event loop (gateway and agent) sits idle.
    """
    await asyncio.to_thread(pair.round_trips, WARMUP)
    await taps(door, WARMUP)
    baseline: list[float] = []
    varco: list[float] = []
    blocks = min(BLOCKS, count)
    for block in range(blocks):
        size = count // blocks + (1 if block < count % blocks else 0)
        baseline += await asyncio.to_thread(pair.round_trips, size)
        varco += await taps(door, size)
    return baseline, varco


async def _measure(broker: Broker, count: int, workdir: Path, key: str) -> tuple[Latency, Latency]:
    with PahoPair(broker) as pair:
        async with running_door(broker, workdir, key) as door:
            baseline, varco = await compare(pair, door, count)
    return Latency.of(baseline), Latency.of(varco)


def measure(broker: Broker, count: int, workdir: Path) -> tuple[Latency, Latency]:
    """Seed a fresh store in ``workdir``; time ``count`` taps and as many paho round trips."""
    key = seed(workdir)
    return asyncio.run(_measure(broker, count, workdir, key))


def run(count: int, *, nagle: bool) -> list[tuple[str, Latency]]:
    """Measure every row; the baseline first."""
    rows: list[tuple[str, Latency]] = []
    with tempfile.TemporaryDirectory(prefix="varco-bench-tap-") as name:
        workdir = Path(name)
        with private_mosquitto() as broker:
            baseline, varco = measure(broker, count, workdir / "nodelay")
            rows += [("paho request/reply (baseline)", baseline), ("varco door.tap", varco)]
        if nagle:
            with private_mosquitto(nodelay=False) as broker:
                baseline, varco = measure(broker, min(count, NAGLE_TAPS), workdir / "nagle")
            rows += [
                ("paho request/reply, Nagle broker", baseline),
                ("varco door.tap, Nagle broker", varco),
            ]
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.tap_latency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--taps", type=int, default=500, help="timed round trips (default 500)")
    parser.add_argument(
        "--no-nagle", action="store_true", help="skip the rows on a broker without TCP_NODELAY"
    )
    args = parser.parse_args(argv)
    if args.taps < 2:
        parser.error("--taps must be at least 2")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    rows = run(args.taps, nagle=not args.no_nagle)
    print(
        f"tap-to-decision round trip ({os.cpu_count()} CPUs; {WARMUP} warm-up rounds of each"
        f" not timed; baseline and Varco alternate in {BLOCKS} blocks)"
    )
    print(latency_table(rows, baseline=rows[0][1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
