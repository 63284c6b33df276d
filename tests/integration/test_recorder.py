"""The recorder against a real influxd: nothing lost, nothing doubled, bad points set aside.

influxd here is Debian's 1.6 (v1 API only); influxdb-client's v2 writes reach it through the
shim in ``tests/integration/influxd.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sqlite3
import sys
import textwrap
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import func, select

from gateway import measurements
from gateway.recorder import InfluxTarget, Recorder, RecorderOptions
from gateway.service import Gateway
from gateway.settings import Settings
from gateway.store import Store
from gateway.store.models import AccessEvent, DeskEventRecord
from tests.conftest import Mosquitto, free_port, need
from tests.factories import DOOR_DEVICE, FRONT_DOOR, add_desk_node, make_space
from tests.factories import SITE as SPACE_SITE
from tests.integration.conftest import eventually
from tests.integration.influxd import Influxd, V2Shim
from varco import protocol, transport
from varco.protocol import (
    Channel,
    Credential,
    DeskEvent,
    DeviceState,
    DoorEvent,
    DoorState,
    OfflineDecision,
    Reason,
    Status,
    Tap,
    Topic,
)

pytestmark = pytest.mark.integration

BUCKET = "varco"
SITE = "rome"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FAST = RecorderOptions(batch_size=50, first_backoff=0.05, max_backoff=0.3, flush_seconds=10)


@pytest.fixture
def influxd(tmp_path: Path) -> Iterator[Influxd]:
    """A private influxd with an empty ``varco`` database, stopped after the test."""
    need(shutil.which("influxd") is not None, "influxd is not installed (apt install influxdb)")
    server = Influxd(tmp_path / "influxd")
    server.directory.mkdir()
    server.start()
    server.query(f"CREATE DATABASE {BUCKET}")
    yield server
    server.stop()


@pytest.fixture
def shim(influxd: Influxd) -> Iterator[V2Shim]:
    with V2Shim(influxd) as running:
        yield running


def recorder(url: str, outbox: Path, options: RecorderOptions = FAST) -> Recorder:
    return Recorder(InfluxTarget(url, "varco", BUCKET, "test-token"), outbox, options)


def desk_event(n: int, occupied: bool = True, start: datetime = START) -> DeskEvent:
    return DeskEvent(
        event_id=f"desk-{n:08d}",
        desk=f"desk-{n % 7}",
        occupied=occupied,
        at=start + timedelta(seconds=n),
    )


def recent() -> datetime:
    """A start for events the gateway takes: it refuses those older than it can believe."""
    return protocol.utcnow() - timedelta(hours=1)


# desk-1 is in the lobby, the others in the open space; all reported by the desk node.
DESKS = {f"desk-{n}": "lobby" if n == 1 else "open-space" for n in range(7)}


def desk_topic() -> Topic:
    return Topic(site=SITE, device="desk-node-1", channel=Channel.DESK)


def count(influxd: Influxd, field: str, measurement: str) -> int:
    rows = influxd.rows(BUCKET, f'SELECT count("{field}") FROM "{measurement}"')  # noqa: S608
    return int(rows[0][1]) if rows else 0


async def test_points_round_trip_with_their_own_time(
    influxd: Influxd, shim: V2Shim, tmp_path: Path
) -> None:
    async with recorder(shim.url, tmp_path / "outbox.db") as rec:
        rec.on_message(desk_topic(), desk_event(1))
        rec.on_message(desk_topic(), desk_event(1))  # a redelivery: the same point
        rec.on_message(
            Topic(site=SITE, device="door-ctl-1", channel=Channel.DOOR),
            DoorEvent(event_id="door-0001", door="front-door", state=DoorState.OPENED, at=START),
        )
        rec.on_message(
            Topic(site=SITE, device="door-ctl-1", channel=Channel.STATUS),
            Status(
                state=DeviceState.ONLINE,
                software="0.1.0",
                started_at=START,
                at=START + timedelta(minutes=5),
                uptime_seconds=300.0,
                outbox_depth=2,
            ),
        )
        rec.on_access_committed(
            [
                {
                    "event_id": "tap-00000001",
                    "site": SITE,
                    "door_id": "front-door",
                    "credential": "04A1B2C3D4",
                    "member_id": 4242,
                    "granted": True,
                    "reason": "granted",
                    "decided_offline": False,
                    "tapped_at": START + timedelta(seconds=3),
                }
            ]
        )
        assert await rec.flush(10)
        assert rec.counters["written"] == 5
    assert influxd.rows(BUCKET, 'SELECT "occupied", "desk" FROM "desk"') == [
        ["2026-03-02T09:00:01Z", 1, "desk-1"]
    ]
    assert influxd.rows(BUCKET, 'SELECT "count", "state" FROM "door"') == [
        ["2026-03-02T09:00:00Z", 1, "opened"]
    ]
    assert influxd.rows(BUCKET, 'SELECT "online", "outbox_depth", "device" FROM "device"') == [
        ["2026-03-02T09:05:00Z", 1, 2, "door-ctl-1"]
    ]
    assert influxd.rows(BUCKET, 'SELECT "count", "result", "reason" FROM "access"') == [
        ["2026-03-02T09:00:03Z", 1, "granted", "granted"]
    ]
    keys = influxd.query('SHOW TAG KEYS FROM "access"', BUCKET)["results"][0]["series"][0]
    assert sorted(k[0] for k in keys["values"]) == ["door", "reason", "result", "site"]


async def test_an_outage_loses_nothing_and_doubles_nothing(
    influxd: Influxd, shim: V2Shim, tmp_path: Path
) -> None:
    async with recorder(shim.url, tmp_path / "outbox.db") as rec:
        for n in range(100):
            rec.on_message(desk_topic(), desk_event(n))
        assert await rec.flush(10)
        await asyncio.to_thread(influxd.stop)
        for n in range(100, 250):
            rec.on_message(desk_topic(), desk_event(n))
        await eventually(lambda: rec.counters["write_failures"] >= 2, within=10)
        assert rec.depth == 150
        await asyncio.to_thread(influxd.start)
        assert await rec.flush(15)
    assert count(influxd, "occupied", "desk") == 250


async def test_a_rejected_point_is_set_aside_and_the_rest_go_on(
    influxd: Influxd, shim: V2Shim, tmp_path: Path
) -> None:
    async with recorder(shim.url, tmp_path / "outbox.db") as rec:
        for n in range(30):
            rec.on_message(desk_topic(), desk_event(n))
        # A point of the wrong type (from an older version, say): 'occupied' as a string.
        at = measurements.desk_point(SITE, desk_event(999)).nanoseconds
        bad = f'desk,desk=desk-x,site={SITE} occupied="yes" {at}'
        rec.outbox.put([bad])
        for n in range(30, 60):
            rec.on_message(desk_topic(), desk_event(n))
        assert await rec.flush(15)
        assert rec.counters["rejected"] == 1
        [(line, reason)] = rec.outbox.rejected()
        assert line == bad
        assert "field type conflict" in reason
    assert count(influxd, "occupied", "desk") == 60


_KILLED = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from gateway.recorder import InfluxTarget, Recorder, RecorderOptions
from gateway.service import Gateway
from gateway.settings import Settings
from varco import protocol, transport
from varco.protocol import Channel, DeskEvent, Topic

async def main() -> None:
    rec = Recorder(InfluxTarget(sys.argv[1], "varco", "varco"), Path(sys.argv[2]),
                   RecorderOptions(first_backoff=0.05, max_backoff=0.1))
    rec.start()
    topic = Topic(site="rome", device="desk-node-1", channel=Channel.DESK)
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    for n in range(500):
        rec.on_message(topic, DeskEvent(event_id=f"desk-{n:08d}", desk="desk-1",
                                        occupied=n % 2 == 0, at=start + timedelta(seconds=n)))
    print(rec.depth, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_a_killed_gateway_loses_nothing_pending(
    influxd: Influxd, shim: V2Shim, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.db"
    nowhere = f"http://127.0.0.1:{free_port()}"  # InfluxDB unreachable: every point pends
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        textwrap.dedent(_KILLED),
        nowhere,
        str(outbox),
        stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parents[2],
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
    assert line.strip() == b"500"
    process.send_signal(signal.SIGKILL)  # no flush, no close: as a crash or an OOM kill
    await process.wait()
    assert count(influxd, "occupied", "desk") == 0
    async with recorder(shim.url, outbox) as rec:
        assert rec.depth == 500
        assert await rec.flush(15)
    assert count(influxd, "occupied", "desk") == 500


async def test_a_gateway_process_killed_with_points_pending_loses_none(
    influxd: Influxd, shim: V2Shim, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    database, outbox, api_port = tmp_path / "varco.db", tmp_path / "recorder.db", free_port()
    with Store(f"sqlite:///{database}") as store:
        store.create_schema()
        add_desk_node(store, DESKS, site=SITE)
    environment = {
        **os.environ,
        "VARCO_DATABASE_URL": f"sqlite:///{database}",
        "VARCO_MQTT_PORT": str(mosquitto.port),
        "VARCO_GATEWAY_ID": "gateway-killed",
        "VARCO_API_PORT": str(api_port),
        # InfluxDB is unreachable: every point waits in the recorder's outbox.
        "VARCO_INFLUX_URL": f"http://127.0.0.1:{free_port()}",
        "VARCO_RECORDER_OUTBOX": str(outbox),
    }
    gateway = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "varco", "gateway"],
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as api:

            async def health() -> dict[str, Any]:
                with contextlib.suppress(httpx.TransportError):
                    return dict((await api.get("/healthz")).json())
                return {}

            await until(lambda h: h.get("mqtt_connected") is True, health, "connected")
            address = transport.BrokerAddress(port=mosquitto.port)
            async with transport.client(address, identifier="desk-node-1") as client:
                start = recent()
                for n in range(200):
                    await client.publish(
                        protocol.topic(SITE, "desk-node-1", Channel.DESK),
                        protocol.encode(desk_event(n, start=start)),
                        qos=1,
                    )
            # Every event stored in SQL and every point waiting in the recorder's outbox.
            await until(
                lambda h: (h.get("recorder") or {}).get("depth") == 200, health, "200 pending"
            )
    finally:
        gateway.send_signal(signal.SIGKILL)  # no flush, no close: as a crash or an OOM kill
        await gateway.wait()
    assert count(influxd, "occupied", "desk") == 0
    with contextlib.closing(sqlite3.connect(outbox)) as pending:
        assert pending.execute("SELECT count(*) FROM points").fetchone() == (200,)

    settings = Settings(
        database_url=f"sqlite:///{database}",
        mqtt_port=mosquitto.port,
        gateway_id="gateway-killed",
        influx_url=shim.url,
        recorder_outbox=outbox,
    )
    async with Gateway(settings) as restarted:  # now with InfluxDB there
        assert restarted.recorder is not None
        recorder = restarted.recorder
        await eventually(lambda: recorder.depth == 0, within=15)
    assert count(influxd, "occupied", "desk") == 200
    with Store(f"sqlite:///{database}") as store, store.session() as session:
        assert session.scalar(select(func.count()).select_from(DeskEventRecord)) == 200


async def until(
    done: Callable[[dict[str, Any]], bool],
    health: Callable[[], Awaitable[dict[str, Any]]],
    what: str,
) -> None:
    for _ in range(200):  # about 20 s
        if done(await health()):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the gateway never reported {what}")


async def test_the_gateway_records_what_it_ingests(
    influxd: Influxd, shim: V2Shim, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'varco.db'}",
        mqtt_port=mosquitto.port,
        gateway_id="gateway-test",
        policy_refresh_seconds=3600,
        influx_url=shim.url,
        recorder_outbox=tmp_path / "recorder.db",
    )
    with Store(settings.database_url) as store:
        store.create_schema()
        add_desk_node(store, DESKS, site=SITE)  # desk-1 is in the lobby: its points say so
    async with Gateway(settings) as gateway:
        assert gateway.recorder is not None
        assert gateway.ingest is not None
        await asyncio.wait_for(gateway.ingest.connected.wait(), timeout=5)
        async with transport.client(settings.broker(), identifier="desk-node-1") as client:
            start = recent()
            for n in range(5):
                await client.publish(
                    protocol.topic(SITE, "desk-node-1", Channel.DESK),
                    protocol.encode(desk_event(n, start=start)),
                    qos=1,
                )
        await eventually(lambda: count(influxd, "occupied", "desk") == 5, within=10)
    assert count(influxd, "occupied", "desk") == 5
    lobby = influxd.rows(BUCKET, """SELECT count("occupied") FROM "desk" WHERE "area" = 'lobby'""")
    assert lobby[0][1] == 1  # desk-1's one event


async def test_a_tap_answered_then_decided_offline_is_one_point_with_the_doors_outcome(
    influxd: Influxd, shim: V2Shim, tmp_path: Path
) -> None:
    # The gateway answered (granted), too late: the door decided offline (denied).
    tap = {
        "event_id": "tap-00000002",
        "site": SITE,
        "door_id": "front-door",
        "granted": True,
        "reason": "granted",
        "decided_offline": False,
        "tapped_at": START + timedelta(seconds=7),
    }
    async with recorder(shim.url, tmp_path / "outbox.db") as rec:
        rec.on_access_committed([tap])
        assert await rec.flush(10)
        door_word = {
            **tap,
            "granted": False,
            "reason": "not_in_allowlist",
            "decided_offline": True,
            "online_granted": True,
            "online_reason": "granted",
        }
        rec.on_access_committed([door_word])
        rec.on_access_committed([door_word])  # committed again after a crash: the same
        assert await rec.flush(10)
        assert rec.counters["deleted"] == 2
    assert influxd.rows(BUCKET, 'SELECT "count", "offline", "result", "reason" FROM "access"') == [
        ["2026-03-02T09:00:07Z", 1, 1, "denied", "not_in_allowlist"]
    ]


async def test_the_gateway_keeps_one_point_per_tap_in_sql_and_influxdb(
    influxd: Influxd, shim: V2Shim, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'varco.db'}",
        mqtt_port=mosquitto.port,
        gateway_id="gateway-test",
        policy_refresh_seconds=3600,
        influx_url=shim.url,
        recorder_outbox=tmp_path / "recorder.db",
    )
    with Store(settings.database_url) as store:
        space = make_space(store)
    tapped = recent()
    online = Tap(
        event_id="late-answer-1",
        door=FRONT_DOOR,
        credential=Credential(value=space.ADA_BADGE),
        at=tapped,
    )
    offline = msgspec.structs.replace(
        online,
        offline=OfflineDecision(granted=False, reason=Reason.NO_ALLOWLIST),
    )
    topic = protocol.topic(SPACE_SITE, DOOR_DEVICE, Channel.TAP)
    async with Gateway(settings) as gateway:
        assert gateway.ingest is not None
        await asyncio.wait_for(gateway.ingest.connected.wait(), timeout=5)
        async with transport.client(settings.broker(), identifier="door-ctl-raw") as client:
            await client.publish(topic, protocol.encode(online), qos=1)
            await eventually(lambda: count(influxd, "count", "access") == 1, within=10)
            await client.publish(topic, protocol.encode(offline), qos=1)  # the door's word
            await eventually(
                lambda: (
                    influxd.rows(BUCKET, 'SELECT "count", "result" FROM "access"')
                    == [[influx_time(tapped), 1, "denied"]]
                ),
                within=10,
            )
        with gateway.store.session() as session:
            [row] = session.scalars(select(AccessEvent)).all()
    assert (row.granted, row.reason, row.decided_offline) == (False, "no_allowlist", True)
    assert (row.online_granted, row.online_reason) == (True, "granted")


def influx_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace("000Z", "Z")
