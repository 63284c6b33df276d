"""One device floods, another door waits: ``python -m bench.flood [--flood N] [--taps N]``.

A real ``varco gateway`` process (SQLite in a temporary folder) on a private mosquitto. One
device, a bare paho client in a process of its own, publishes ``--flood`` taps at QoS 1 as fast
as it can. Meanwhile the other doors, ten door controllers behind one bare paho requester in
this process, tap one badge after another, each door every 50 ms (a door's readers cannot be
tapped faster), and time each tap until the gateway's decision comes back. Baseline: a bare paho
echo (request and reply at QoS 1, as ``bench.tap_latency``) on the same broker, in the same run;
the same doors' taps without a flood are shown too.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from bench.bare_client import BareClient
from bench.broker import Broker, free_port, private_mosquitto
from bench.figures import Latency, latency_table
from bench.tap_latency import WARMUP, PahoPair
from gateway.store import Store, models
from varco import protocol
from varco.protocol import Channel, Credential, Decision, Tap

SITE = "bench-site"
FLOODER = "door-ctl-flood"
FLOOD_DOOR = "flood-door"
OTHERS = [(f"door-ctl-{n}", f"door-{n}") for n in range(10)]  # (device, door)
BADGE = "04A1B2C3D4"
# A door decides offline when the gateway has not answered within this (edge default).
DOOR_TIMEOUT = 1.0
PAUSE_SECONDS = 0.005  # between two taps of the other doors: each door every 50 ms


def seed(database: Path) -> None:
    """Create a member with a badge, and the door controllers with a door each."""
    with Store(f"sqlite:///{database}") as store:
        store.create_schema()
        with store.session() as session:
            lobby = models.Zone(id="lobby", name="Lobby")
            session.add_all(
                [
                    models.Site(id=SITE, name="Bench", timezone="Europe/Rome"),
                    lobby,
                    models.Plan(id="hot-desk", name="Hot desk", zones=[lobby]),
                    *(
                        models.Device(id=device, site=SITE, kind=models.DeviceKind.DOOR_CONTROLLER)
                        for device, _ in [*OTHERS, (FLOODER, FLOOD_DOOR)]
                    ),
                ]
            )
            session.flush()
            member = models.Member(name="Ada Lovelace", plan_id="hot-desk")
            session.add_all(
                [
                    *(
                        models.Door(id=door, name=door, zone_id="lobby", device_id=device)
                        for device, door in [*OTHERS, (FLOODER, FLOOD_DOOR)]
                    ),
                    member,
                ]
            )
            session.flush()
            session.add(models.Badge(uid=BADGE, member_id=member.id))


@contextlib.contextmanager
def gateway_process(broker: Broker, database: Path) -> Iterator[httpx.Client]:
    """Run ``varco gateway`` until the block ends; yield an HTTP client for its API."""
    port = free_port()
    environment = {
        **os.environ,
        "VARCO_DATABASE_URL": f"sqlite:///{database}",
        "VARCO_MQTT_HOST": broker.host,
        "VARCO_MQTT_PORT": str(broker.port),
        "VARCO_API_PORT": str(port),
        "VARCO_GATEWAY_ID": "gateway-bench",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "varco", "gateway"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as api:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.TransportError):
                    if api.get("/healthz").json().get("mqtt_connected"):
                        break
                time.sleep(0.1)
            else:
                raise TimeoutError("the gateway did not connect to the broker within 30 s")
            yield api
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def flood(host: str, port: int, count: int, started: ProcessEvent) -> None:
    """Publish ``count`` taps as the flooding device, at QoS 1, as fast as paho can."""
    payloads = [
        protocol.encode(
            Tap(
                event_id=f"flood-{n:012d}",
                door=FLOOD_DOOR,
                credential=Credential(value=BADGE),
                at=protocol.utcnow(),
            )
        )
        for n in range(count)
    ]
    topic = protocol.topic(SITE, FLOODER, Channel.TAP)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=FLOODER, protocol=MQTTProtocolVersion.MQTTv311
    )
    client.max_inflight_messages_set(1000)  # not waiting for each PUBACK: as fast as it can
    client.max_queued_messages_set(0)
    client.connect(host, port, keepalive=30)
    client.loop_start()
    started.set()
    infos = [client.publish(topic, payload, qos=1) for payload in payloads]
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


class Requester:
    """The other doors, in turn: one tap at a time, each waiting for the gateway's decision."""

    def __init__(self, broker: Broker) -> None:
        self._client = BareClient(broker, "bench-doors")
        self._lock = threading.Lock()
        self._waiting: dict[str, threading.Event] = {}
        self._sent = 0

    def __enter__(self) -> Requester:
        self._client.__enter__()
        self._client.paho.on_message = self._decided
        for device, _ in OTHERS:
            self._client.subscribe(protocol.topic(SITE, device, Channel.DECISION))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._client.__exit__(None, None, None)

    def tap(self) -> float | None:
        """Tap once; return the seconds until the decision, ``None`` past the door's timeout."""
        self._sent += 1
        device, door = OTHERS[self._sent % len(OTHERS)]
        event_id = f"bench-{os.getpid()}-{self._sent:08d}"
        answered = threading.Event()
        with self._lock:
            self._waiting[event_id] = answered
        tap = Tap(
            event_id=event_id, door=door, credential=Credential(value=BADGE), at=protocol.utcnow()
        )
        data, topic = protocol.encode(tap), protocol.topic(SITE, device, Channel.TAP)
        start = time.perf_counter()
        self._client.paho.publish(topic, data, 1)
        got = answered.wait(DOOR_TIMEOUT)
        elapsed = time.perf_counter() - start
        with self._lock:
            self._waiting.pop(event_id, None)
        return elapsed if got else None

    def _decided(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        decision = protocol.decode_as(Decision, bytes(message.payload))
        with self._lock:
            answered = self._waiting.get(decision.event_id)
        if answered is not None:
            answered.set()


def quiet_taps(requester: Requester, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        samples.append(requester.tap())
        time.sleep(PAUSE_SECONDS)
    answered = [s for s in samples if s is not None]
    if len(answered) < count:
        raise RuntimeError(f"{count - len(answered)} taps unanswered with no flood at all")
    return answered


def during_flood(
    broker: Broker, requester: Requester, count: int
) -> tuple[list[float], int, float]:
    """Tap while the flood runs; return the answered latencies, the unanswered, its seconds."""
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    flooder = context.Process(target=flood, args=(broker.host, broker.port, count, started))
    flooder.start()
    if not started.wait(60):
        raise TimeoutError("the flooding client did not start")
    begun = time.perf_counter()
    samples: list[float | None] = []
    while flooder.is_alive():
        samples.append(requester.tap())
        time.sleep(PAUSE_SECONDS)
    flooder.join()
    seconds = time.perf_counter() - begun
    answered = [s for s in samples if s is not None]
    return answered, len(samples) - len(answered), seconds


def run(flood_count: int, taps: int) -> None:
    with tempfile.TemporaryDirectory(prefix="varco-bench-flood-") as name:
        database = Path(name) / "varco.db"
        seed(database)
        with private_mosquitto() as broker:
            with PahoPair(broker) as pair:
                pair.round_trips(WARMUP)
                baseline = Latency.of(pair.round_trips(taps))
            with gateway_process(broker, database) as api, Requester(broker) as requester:
                quiet_taps(requester, WARMUP)
                quiet = Latency.of(quiet_taps(requester, taps))
                flooded, unanswered, seconds = during_flood(broker, requester, flood_count)
                time.sleep(1.0)  # the last refusals counted
                counters = api.get("/healthz").json()["counters"]
    rows = [
        ("paho echo (baseline)", baseline),
        ("other door, no flood", quiet),
        (f"other door, {flood_count:,} taps flooding", Latency.of(flooded)),
    ]
    print(f"one device floods, another door taps ({os.cpu_count()} CPUs)")
    print(latency_table(rows, baseline=baseline))
    slowest = max(flooded) * 1e3
    print(
        f"\nduring the flood ({seconds:.1f} s): {len(flooded) + unanswered} taps at the other"
        f" doors, {unanswered} unanswered within {DOOR_TIMEOUT:g} s, slowest {slowest:.1f} ms"
    )
    shown = {k: v for k, v in sorted(counters.items()) if k.startswith(("rejected", "accepted"))}
    print(f"gateway counters: {shown}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.flood",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--flood", type=int, default=20_000, help="flood taps (default 20,000)")
    parser.add_argument("--taps", type=int, default=200, help="timed quiet taps (default 200)")
    args = parser.parse_args(argv)
    if args.taps < 2 or args.flood < 1:
        parser.error("--taps must be at least 2 and --flood at least 1")
    run(args.flood, args.taps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
