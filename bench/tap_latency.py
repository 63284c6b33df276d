"""Tap-to-decision round trip: ``python -m bench.tap_latency [--taps N]``.

Baseline: two bare paho clients on a private mosquitto; one publishes a request at QoS 1, the
other answers it at QoS 1, and the first times the round trip. Varco: a real gateway (SQLite
in a temporary folder) and a real edge agent (gpiozero's MockFactory) in this process, timing
``await door.tap(uid)`` for a granted badge: tap through the outbox, policy decision, decision
back, relay pulsed. Two more rows run both on a broker with Nagle's algorithm left on (no
``set_tcp_nodelay``), to show what that costs.

CPU per tap (skip with ``--no-cpu``): a real ``varco gateway`` process on its own, tapped by a
bare paho client sending ``Tap`` payloads; baseline: the paho echo client in a process of its
own. Each process's CPU time (``/proc/<pid>/stat``, all threads) is read before and after the
same number of round trips; printed per round trip, with the ratio (issue 9: at most x2).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt

from bench.bare_client import TIMEOUT_SECONDS, BareClient
from bench.broker import Broker, free_port, private_mosquitto
from bench.figures import Latency, latency_table, ratio
from bench.gateway_process import gateway_process, wait_healthy
from bench.usage import cpu_seconds
from edge_agent.agent import Agent
from edge_agent.config import BrokerConfig, DoorConfig, EdgeConfig, Secret
from edge_agent.door import Door
from gateway.service import Gateway
from gateway.settings import Settings
from gateway.store import Store, models
from varco import protocol
from varco.protocol import Channel, Credential, Decision, Tap

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
TARGET_CPU_RATIO = 2.0
IDLE_SECONDS = 1.0
SETTLE_SECONDS = 0.2
REPO = Path(__file__).resolve().parents[1]
# Runs in a process of its own: the baseline's "gateway", whose CPU time is measured.
ECHO_PROCESS = "import sys; from bench.tap_latency import serve_echo; serve_echo(*sys.argv[1:])"


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


def serve_echo(host: str, port: str) -> None:
    """Echo every request as a reply until stdin closes: the baseline's answering process."""
    broker = Broker(host, int(port), nodelay=True, log=Path("/dev/null"))

    def echo(client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        client.publish(REPLY_TOPIC, message.payload, qos=1)

    with BareClient(broker, "bench-gateway-echo") as client:
        client.paho.on_message = echo
        client.subscribe(REQUEST_TOPIC)
        print("ready", flush=True)
        sys.stdin.read()


class PahoAsker:
    """The baseline's asking side, for an echo in another process; a context manager."""

    def __init__(self, broker: Broker) -> None:
        self._client = BareClient(broker, "bench-edge-asker")
        self._answered = threading.Event()
        self._payload = b'{"event_id":"0123456789abcdef0123456789abcdef","door":"front-door"}'

    def __enter__(self) -> PahoAsker:
        self._client.__enter__()
        self._client.paho.on_message = lambda _c, _u, _m: self._answered.set()
        self._client.subscribe(REPLY_TOPIC)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._client.__exit__(None, None, None)

    def round_trips(self, count: int) -> list[float]:
        """Time ``count`` QoS 1 request/reply round trips, one at a time."""
        samples: list[float] = []
        for _ in range(count):
            self._answered.clear()
            start = time.perf_counter()
            self._client.paho.publish(REQUEST_TOPIC, self._payload, qos=1)
            if not self._answered.wait(TIMEOUT_SECONDS):
                raise TimeoutError("the echo process did not answer")
            samples.append(time.perf_counter() - start)
        return samples


class BareDoor:
    """A door controller reduced to a bare paho client: sends a ``Tap``, waits for its
    ``Decision``; a context manager."""

    def __init__(self, broker: Broker) -> None:
        self._client = BareClient(broker, "bench-bare-door")
        self._waiting = ""
        self._decision: Decision | None = None
        self._answered = threading.Event()

    def __enter__(self) -> BareDoor:
        self._client.__enter__()
        self._client.paho.on_message = self._on_decision
        self._client.subscribe(protocol.topic(SITE, DEVICE, Channel.DECISION))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._client.__exit__(None, None, None)

    def _on_decision(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        decision = protocol.decode_as(Decision, bytes(message.payload))
        if decision.event_id == self._waiting:
            self._decision = decision
            self._answered.set()

    def round_trips(self, count: int) -> list[float]:
        """Tap the member's badge ``count`` times, one at a time; each must be granted."""
        topic = protocol.topic(SITE, DEVICE, Channel.TAP)
        samples: list[float] = []
        for _ in range(count):
            tap = Tap(
                event_id=uuid.uuid4().hex,
                door=DOOR,
                credential=Credential(value=BADGE),
                at=protocol.utcnow(),
            )
            data = protocol.encode(tap)
            self._answered.clear()
            self._waiting = tap.event_id
            start = time.perf_counter()
            self._client.paho.publish(topic, data, qos=1)
            if not self._answered.wait(TIMEOUT_SECONDS):
                raise TimeoutError("the gateway did not answer a tap")
            samples.append(time.perf_counter() - start)
            if self._decision is None or not self._decision.granted:
                raise RuntimeError(f"a tap was not granted: {self._decision}")
        return samples


@contextlib.contextmanager
def echo_process(broker: Broker) -> Iterator[int]:
    """Run ``serve_echo`` in a process of its own; yield its pid."""
    process = subprocess.Popen(
        [sys.executable, "-c", ECHO_PROCESS, broker.host, str(broker.port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        if process.stdout.readline().strip() != b"ready":
            raise RuntimeError("the echo process did not start")
        yield process.pid
    finally:
        process.stdin.close()
        process.wait(timeout=10)


@dataclass(frozen=True, slots=True)
class CpuFigures:
    """Round trips through two processes measured on their own, and their CPU per round trip."""

    echo: Latency
    gateway: Latency
    echo_cpu: float  # seconds of the echo process's CPU per echo
    gateway_cpu: float  # seconds of the gateway process's CPU per tap
    echo_idle: float  # seconds of CPU per second at rest, before the blocks
    gateway_idle: float


def _timed_cpu(
    pid: int, round_trips: Callable[[int], list[float]], count: int
) -> tuple[list[float], float]:
    before = cpu_seconds(pid)
    samples = round_trips(count)
    # The gateway commits the access record after it answers: let that work land too.
    time.sleep(SETTLE_SECONDS)
    return samples, cpu_seconds(pid) - before


def measure_cpu(broker: Broker, count: int, workdir: Path) -> CpuFigures:
    """Seed a store in ``workdir``, start a gateway process and an echo process, and time
    ``count`` round trips of each in alternating blocks, with each process's CPU time."""
    seed(workdir)
    port = free_port()
    extra = {
        "VARCO_POLICY_REFRESH_SECONDS": "3600",  # no refresh in the middle of a block
        # One door tapped back to back, faster than any reader: the budget would refuse it.
        "VARCO_DEVICE_TAP_RATE": "100000",
    }
    with (
        gateway_process(broker, workdir, port, extra) as (gateway, log),
        echo_process(broker) as echo,
        PahoAsker(broker) as asker,
        BareDoor(broker) as door,
    ):
        if wait_healthy(f"http://127.0.0.1:{port}", gateway, log, time.perf_counter()) is None:
            raise RuntimeError(f"varco gateway never became healthy; its log:\n{log.read_text()}")
        asker.round_trips(WARMUP)
        door.round_trips(WARMUP)
        at_rest = cpu_seconds(echo), cpu_seconds(gateway.pid)
        time.sleep(IDLE_SECONDS)
        echo_idle = (cpu_seconds(echo) - at_rest[0]) / IDLE_SECONDS
        gateway_idle = (cpu_seconds(gateway.pid) - at_rest[1]) / IDLE_SECONDS
        echo_samples: list[float] = []
        gateway_samples: list[float] = []
        echo_cpu = gateway_cpu = 0.0
        for block in range(BLOCKS):
            size = count // BLOCKS + (1 if block < count % BLOCKS else 0)
            samples, cpu = _timed_cpu(echo, asker.round_trips, size)
            echo_samples += samples
            echo_cpu += cpu
            samples, cpu = _timed_cpu(gateway.pid, door.round_trips, size)
            gateway_samples += samples
            gateway_cpu += cpu
    return CpuFigures(
        Latency.of(echo_samples),
        Latency.of(gateway_samples),
        echo_cpu / len(echo_samples),
        gateway_cpu / len(gateway_samples),
        echo_idle,
        gateway_idle,
    )


def cpu_lines(figures: CpuFigures) -> list[str]:
    """The separate-process table, and the CPU per round trip with its ratio."""
    cpu_ratio = figures.gateway_cpu / figures.echo_cpu if figures.echo_cpu > 0 else float("inf")
    verdict = "within" if cpu_ratio <= TARGET_CPU_RATIO else "OVER"
    return [
        "tap to decision through processes of their own, and their CPU per round trip"
        f" (/proc/<pid>/task/*/schedstat; {SETTLE_SECONDS} s after each block included)",
        latency_table(
            [
                ("paho echo process (baseline)", figures.echo),
                ("varco gateway process, bare tap", figures.gateway),
            ],
            baseline=figures.echo,
        ),
        f"CPU per round trip: echo process {figures.echo_cpu * 1e3:.3f} ms, gateway process"
        f" {figures.gateway_cpu * 1e3:.3f} ms: {ratio(figures.gateway_cpu, figures.echo_cpu)}"
        f" (target: at most x{TARGET_CPU_RATIO:.0f}: {verdict})",
        f"at rest, before the blocks: echo process {figures.echo_idle * 1e3:.2f} ms of CPU per s,"
        f" gateway process {figures.gateway_idle * 1e3:.2f} ms per s",
    ]


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
    """Measure every in-process row; the baseline first."""
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
    parser.add_argument(
        "--no-cpu", action="store_true", help="skip the gateway process's CPU per tap"
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 if the CPU per tap misses its target"
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
    if not args.no_cpu:
        with (
            tempfile.TemporaryDirectory(prefix="varco-bench-tap-cpu-") as name,
            private_mosquitto() as broker,
        ):
            figures = measure_cpu(broker, args.taps, Path(name) / "store")
        print()
        print("\n".join(cpu_lines(figures)))
        if figures.gateway_cpu > TARGET_CPU_RATIO * figures.echo_cpu:
            print(
                f"MISSED: gateway CPU per tap {ratio(figures.gateway_cpu, figures.echo_cpu)}"
                f" the echo's; target at most x{TARGET_CPU_RATIO:.0f}"
            )
            return 1 if args.strict else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
