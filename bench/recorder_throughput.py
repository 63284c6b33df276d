"""Points per second through the recorder's outbox to influxd, beside influxdb-client alone.

Both paths write the same desk points, in batches of the same size, through the same v2 shim in
front of a private influxd 1.6 (see ``tests/integration/influxd.py``), to separate databases.
The ratio is what the durable outbox costs. Run from the repository root:

    .venv/bin/python -m bench.recorder_throughput [points]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision

from gateway import measurements
from gateway.recorder import InfluxTarget, Recorder, RecorderOptions
from tests.integration.influxd import Influxd, V2Shim
from varco.protocol import Channel, DeskEvent, Topic

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BATCH = 5000


def events(count: int) -> list[DeskEvent]:
    return [
        DeskEvent(
            event_id=f"desk-{n:08d}",
            desk=f"desk-{n % 50}",
            occupied=n % 2 == 0,
            at=START + timedelta(milliseconds=n),
        )
        for n in range(count)
    ]


async def through_outbox(url: str, folder: Path, desk_events: list[DeskEvent]) -> float:
    topic = Topic(site="rome", device="desk-node-1", channel=Channel.DESK)
    began = time.perf_counter()
    options = RecorderOptions(batch_size=BATCH, flush_seconds=600)
    async with Recorder(InfluxTarget(url, "varco", "outbox"), folder / "o.db", options) as rec:
        for event in desk_events:
            rec.on_message(topic, event)
        if not await rec.flush(600):
            raise RuntimeError("the outbox did not drain")
    return time.perf_counter() - began


def client_alone(url: str, desk_events: list[DeskEvent]) -> float:
    began = time.perf_counter()
    lines = [measurements.desk_point("rome", e).line() for e in desk_events]
    with InfluxDBClient(url=url, token="", org="varco", enable_gzip=True) as client:
        write = client.write_api(write_options=SYNCHRONOUS)
        for start in range(0, len(lines), BATCH):
            write.write(
                bucket="alone",
                record="\n".join(lines[start : start + BATCH]),
                write_precision=WritePrecision.NS,
            )
    return time.perf_counter() - began


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    desk_events = events(count)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        influxd = Influxd(folder / "influxd")
        influxd.directory.mkdir()
        influxd.start()
        try:
            influxd.query("CREATE DATABASE outbox")
            influxd.query("CREATE DATABASE alone")
            with V2Shim(influxd) as shim:
                alone = client_alone(shim.url, desk_events)
                outbox = asyncio.run(through_outbox(shim.url, folder, desk_events))
        finally:
            influxd.stop()
    print(f"{count} desk events, batches of {BATCH}")
    print(f"influxdb-client alone : {count / alone:10.0f} events/s")
    print(f"through the outbox    : {count / outbox:10.0f} events/s")
    print(f"ratio outbox/alone    : {alone / outbox:10.2f}")


if __name__ == "__main__":
    main()
