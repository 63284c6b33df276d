"""The fault bed: every real process of a space, the load on it, and the final account.

A scenario gets a running ``FaultBed`` (the ``bed`` fixture), runs the load
(``async with bed.load.running():``) while it breaks things (``bed.gateway.kill()``,
``bed.kill_broker()``, ``bed.influxd.stop()``, ``bed.links[device].set("down")``,
``bed.edges[device].kill()``...), then calls
``await bed.account(name)``: it waits until nothing moves any more, classes every event the
edges made, prints and keeps the table row, and returns the ``Account`` to assert on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.faults.ledger import HEADER, Account, Ledger, account
from tests.faults.load import Load
from tests.faults.processes import Broker, EdgeProcess, GatewayProcess, Pty, tail
from tests.faults.proxy import LinkProxy
from tests.faults.space import DESKS, DOORS, SITE, Space, desk_pin, edge_config, make_space
from tests.faults.stores import BUCKET, Stores
from tests.integration.influxd import Influxd, V2Shim


@dataclass(frozen=True)
class Sizes:
    """How long each outage lasts and how much goes through it, from ``--fault-scale``.

    At scale 1 these are issue 11's sizes; the default run (0.25) keeps every fault and
    shortens what lasts.
    """

    scale: float

    def seconds(self, full: float, least: float = 1.0) -> float:
        return max(full * self.scale, least)

    def count(self, full: int, least: int = 10) -> int:
        return max(round(full * self.scale), least)


@dataclass
class FaultBed:
    """The running space: broker, gateway, InfluxDB, edges, and the links between them."""

    directory: Path
    sizes: Sizes
    database_url: str
    influxd: Influxd
    shim: V2Shim
    broker: Broker
    gateway: GatewayProcess
    stores: Stores
    links: dict[str, LinkProxy] = field(default_factory=dict)
    edges: dict[str, EdgeProcess] = field(default_factory=dict)
    ledger: Ledger = field(init=False)
    typed: Counter[str] = field(default_factory=Counter)  # taps typed at each door's reader
    load: Load = field(init=False)
    accounts: list[Account] = field(default_factory=list)

    def edge_of(self, door: str) -> EdgeProcess:
        return next(edge for edge in self.edges.values() if door in edge.readers)

    def kill_broker(self) -> None:
        """SIGKILL the broker; its port refuses connections until ``start_broker``."""
        self.broker.kill()
        for link in self.links.values():
            link.broker_gone()

    def start_broker(self) -> None:
        self.broker.start()
        for link in self.links.values():
            link.broker_back()

    async def restart_gateway(self) -> None:
        self.gateway.start()
        await self.gateway.ready()

    async def restart_edge(self, device: str) -> None:
        self.edges[device].start()
        await self.edges[device].ready()

    async def run_for(self, seconds: float) -> None:
        """Let the load run (it runs as long as ``bed.load`` is entered)."""
        await asyncio.sleep(seconds)

    async def wait_for(self, what: str, done: Callable[[], bool], within: float) -> float:
        """Wait until ``done()`` is true; return how long it took."""
        start = time.monotonic()
        while not done():
            if time.monotonic() - start > within:
                raise AssertionError(f"{what}: not after {within:.0f}s")
            self.ledger.refresh()
            await asyncio.sleep(0.1)
        return time.monotonic() - start

    async def settle(self, within: float) -> bool:
        """Wait until nothing moves: edges drained, the gateway's writer and recorder empty,
        every tap decided, and both stores unchanged for 1.5 s; return whether it got there."""
        deadline = time.monotonic() + within
        last: tuple[int, int, int, int] | None = None
        still = 0
        while time.monotonic() < deadline:
            self.ledger.refresh()
            health = await self.gateway.health()
            statuses = [edge.status() for edge in self.edges.values()]
            busy = (
                health is None
                or bool(health["writer_depth"])
                or bool((health.get("recorder") or {}).get("depth"))
                or any(s.get("depth") or not s.get("connected") for s in statuses)
                or any(self.typed[door] > self.ledger.decided[door] for door in self.typed)
            )
            try:
                counts: tuple[int, int, int, int] | None = await asyncio.to_thread(
                    self.stores.counts
                )
            except OSError:
                counts = None
            still = still + 1 if not busy and counts is not None and counts == last else 0
            if still >= 3:
                return True
            last = counts
            await asyncio.sleep(0.5)
        return False

    async def account(self, scenario: str, within: float = 90) -> Account:
        """Wait for quiescence, then class every event the edges made; keep the table row."""
        settled = await self.settle(within)
        self.ledger.refresh()
        stores = self.stores
        result = await asyncio.to_thread(
            lambda: account(
                scenario,
                self.ledger,
                self.typed,
                stores.sql_taps(),
                stores.sql_desks(),
                stores.influx_taps(),
                stores.influx_desks(),
            )
        )
        if not settled:
            result.notes["not quiet after"] = f"{within:.0f}s"
        result.notes["scale"] = f"{self.sizes.scale:g}"
        self.accounts.append(result)
        print(f"\n{HEADER}\n{result.row()}")
        for example in result.examples:
            print(f"  {example}")
        return result

    def diagnosis(self) -> str:
        """The ends of the logs, for a failure's message."""
        parts = [f"--- gateway\n{tail(self.gateway.log)}", f"--- broker\n{tail(self.broker.log)}"]
        parts += [f"--- {edge.device}\n{tail(edge.log, 10)}" for edge in self.edges.values()]
        return "\n".join(parts)


@contextlib.asynccontextmanager
async def fault_bed(directory: Path, database_url: str, sizes: Sizes) -> AsyncIterator[FaultBed]:
    """Start InfluxDB, the broker, the gateway and the edges; stop them all afterwards."""
    with contextlib.ExitStack() as stack:
        influxd = Influxd(directory / "influxd")
        influxd.directory.mkdir(parents=True)
        influxd.start()
        stack.callback(influxd.stop)
        influxd.query(f"CREATE DATABASE {BUCKET}")
        shim = stack.enter_context(V2Shim(influxd))
        broker = Broker(directory / "broker")
        broker.start()
        stack.callback(broker.stop)
        space: Space = await asyncio.to_thread(make_space, database_url)
        gateway = GatewayProcess(
            {
                "VARCO_DATABASE_URL": database_url,
                "VARCO_MQTT_PORT": str(broker.port),
                "VARCO_GATEWAY_ID": "gateway-1",
                "VARCO_INFLUX_URL": shim.url,
                "VARCO_INFLUX_ORG": "varco",
                "VARCO_INFLUX_BUCKET": BUCKET,
                "VARCO_INFLUX_TOKEN": "fault-suite",
                "VARCO_RECORDER_OUTBOX": str(directory / "recorder.db"),
            },
            directory / "gateway.log",
        )
        stack.callback(gateway.stop)
        stores = Stores(database_url, influxd, SITE)
        stack.callback(stores.close)
        bed = FaultBed(directory, sizes, database_url, influxd, shim, broker, gateway, stores)
        for device in [*DOORS, *DESKS]:
            link = stack.enter_context(LinkProxy(broker.port))
            readers = {door: Pty.open() for door in DOORS.get(device, ())}
            for pty in readers.values():
                stack.callback(pty.close)
            folder = directory / device
            folder.mkdir()
            config = edge_config(
                device,
                key=space.keys[device],
                broker_port=link.port,
                state_dir=folder / "state",
                ports={door: pty.path for door, pty in readers.items()},
            )
            pins = {desk: desk_pin(desk) for desk in DESKS.get(device, ())}
            edge = EdgeProcess(device, folder, config, readers, pins)
            stack.callback(edge.stop)
            bed.links[device], bed.edges[device] = link, edge
        bed.ledger = Ledger({device: edge.ledger for device, edge in bed.edges.items()})
        bed.load = Load(bed.edges, bed.ledger, bed.typed, space.badges)
        await bed.restart_gateway()
        for edge in bed.edges.values():
            edge.start()
        for edge in bed.edges.values():
            await edge.ready()
        yield bed
