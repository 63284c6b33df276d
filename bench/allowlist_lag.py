"""Lag from an admin's change in the API to the door controller's allow-list update on the broker.

    python -m bench.allowlist_lag [--changes N] [--members M]

An admin suspends, then reinstates, a member through the real FastAPI app (``PATCH
/members/{id}``, over httpx's ASGI transport), with ``M`` members and badges in the store; the
time runs until a subscriber on the door controller's ``allowlist`` topic receives the list
that follows the change. Baseline, in the same run and broker: a bare paho publish until the
same subscriber receives it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt

from bench.bare_client import TIMEOUT_SECONDS, BareClient
from bench.broker import Broker, private_mosquitto
from bench.figures import Latency, latency_table
from bench.tap_latency import DEVICE, SITE, seed
from gateway.api import create_app
from gateway.service import Gateway
from gateway.settings import Settings
from gateway.store import Store, models
from gateway.store.tokens import issue_token
from varco import protocol
from varco.protocol import AllowlistDelta, Channel

ALLOWLIST_TOPIC = protocol.topic(SITE, DEVICE, Channel.ALLOWLIST)
PROBE_TOPIC = "bench/probe"


class Watcher:
    """A bare subscriber on the allow-list and probe topics, noting when each message lands."""

    def __init__(self, client: BareClient) -> None:
        self._arrivals: dict[str, list[tuple[float, bytes]]] = {}
        self._changed = threading.Condition()
        client.paho.on_message = self._on_message
        client.subscribe(ALLOWLIST_TOPIC)
        client.subscribe(PROBE_TOPIC)

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._changed:
            self._arrivals.setdefault(message.topic, []).append(
                (time.perf_counter(), bytes(message.payload))
            )
            self._changed.notify_all()

    def count(self, topic: str) -> int:
        with self._changed:
            return len(self._arrivals.get(topic, []))

    def wait_for(self, topic: str, after: int) -> tuple[float, bytes]:
        """Wait for the message number ``after`` on ``topic``; return its time and payload."""
        with self._changed:
            if not self._changed.wait_for(
                lambda: len(self._arrivals.get(topic, [])) > after, TIMEOUT_SECONDS
            ):
                raise TimeoutError(f"nothing new on {topic}")
            return self._arrivals[topic][after]


def add_members(database: Path, count: int) -> tuple[int, str]:
    """Give the store ``count`` more members with badges; return one member's id and a token."""
    with Store(f"sqlite:///{database}") as store, store.session() as session:
        members = [models.Member(name=f"Member {n}", plan_id="hot-desk") for n in range(count)]
        session.add_all(members)
        session.flush()
        session.add_all(
            models.Badge(uid=f"{0xA0000000 + n:08X}", member_id=m.id) for n, m in enumerate(members)
        )
        token = issue_token(session, name="bench", role=models.Role.ADMIN)
        return members[0].id, token


def baseline(publisher: BareClient, watcher: Watcher, count: int) -> list[float]:
    samples = []
    for n in range(count):
        seen = watcher.count(PROBE_TOPIC)
        start = time.perf_counter()
        publisher.publish(PROBE_TOPIC, f"probe {n}".encode())
        arrived, _ = watcher.wait_for(PROBE_TOPIC, seen)
        samples.append(arrived - start)
    return samples


async def varco(
    broker: Broker, workdir: Path, watcher: Watcher, count: int, members: int
) -> list[float]:
    database = workdir / "varco.db"
    member_id, token = add_members(database, members)
    settings = Settings(
        database_url=f"sqlite:///{database}",
        mqtt_host=broker.host,
        mqtt_port=broker.port,
        gateway_id="gateway-bench",
        policy_refresh_seconds=3600,
    )
    gateway = Gateway(settings)
    app = create_app(gateway)
    samples = []
    sizes: list[int] = []
    async with gateway:
        app.state.gateway = gateway
        await asyncio.to_thread(watcher.wait_for, ALLOWLIST_TOPIC, 0)  # the first list
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for n in range(count):
                seen = watcher.count(ALLOWLIST_TOPIC)
                status = "suspended" if n % 2 == 0 else "active"
                start = time.perf_counter()
                response = await client.patch(
                    f"/members/{member_id}", json={"status": status}, headers=headers
                )
                response.raise_for_status()
                arrived, raw = await asyncio.to_thread(watcher.wait_for, ALLOWLIST_TOPIC, seen)
                samples.append(arrived - start)
                update = protocol.decode(Channel.ALLOWLIST, raw)
                assert isinstance(update, AllowlistDelta), "a change sends an update"
                sizes.append(len(raw))
    print(f"update sizes: {min(sizes)}-{max(sizes)} bytes")
    return samples


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.allowlist_lag",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--changes", type=int, default=40, help="timed changes (default 40)")
    parser.add_argument("--members", type=int, default=500, help="members in the store")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with (
        tempfile.TemporaryDirectory(prefix="varco-bench-lag-") as name,
        private_mosquitto() as broker,
    ):
        workdir = Path(name) / "store"
        seed(workdir)
        with (
            BareClient(broker, "bench-watcher") as listener,
            BareClient(broker, "bench-pub") as pub,
        ):
            watcher = Watcher(listener)
            base = baseline(pub, watcher, args.changes)
            lag = asyncio.run(varco(broker, workdir, watcher, args.changes, args.members))
    rows = [
        ("paho publish -> subscriber (baseline)", Latency.of(base)),
        (f"API change -> allow-list update ({args.members + 1} members)", Latency.of(lag)),
    ]
    print(
        f"allow-list lag ({os.cpu_count()} CPUs; {args.changes} changes, alternately suspend "
        "and reinstate one member)"
    )
    print(latency_table(rows, baseline=rows[0][1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
