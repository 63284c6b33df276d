"""Hostile and broken devices, generated: schema-valid payloads with extreme values in every field,
published as devices to a real mosquitto and a real gateway (SQLite).

Whatever they send, the gateway answers a good door's taps, counts each message as accepted or
refused, acknowledges every one, says ``ok`` on ``/healthz`` and keeps its memory bounded.
``VARCO_FUZZ_EXAMPLES`` runs more batches than CI's few dozen.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.admission import RefusalLog
from gateway.api import create_app
from gateway.ingest import RECENT_DECISIONS
from gateway.store.models import Device, DeviceKind, Door
from tests.factories import DOOR_DEVICE, FRONT_DOOR, OFFICE_DOOR, SITE, add_desk_node
from tests.integration.conftest import Rig, device_client, eventually, next_decision, tap_for
from varco import protocol
from varco.protocol import (
    ID_PATTERN,
    Channel,
    Credential,
    CredentialKind,
    DeskEvent,
    DeviceState,
    DoorEvent,
    DoorState,
    OfflineDecision,
    Reason,
    Status,
    Tap,
)

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("VARCO_FUZZ_EXAMPLES", "30"))
GOOD_DEVICE, GOOD_DOOR = "door-ctl-good", "good-door"  # never sends anything hostile
OTHER_DEVICE, OTHER_DOOR = "door-ctl-2", "back-door"
DESK_NODE, OTHER_NODE = "desk-node-1", "desk-node-2"
SENDERS = [DOOR_DEVICE, OTHER_DEVICE, DESK_NODE, OTHER_NODE, "door-ctl-99"]
DOORS = [FRONT_DOOR, OFFICE_DOOR, OTHER_DOOR, GOOD_DOOR, "nowhere"]
DESKS = ["desk-1", "desk-2", "desk-999"]
OFFSETS = [timezone(timedelta(hours=h)) for h in (-14, -12, -1, 0, 1, 5.75, 13, 14)]


def max_id() -> st.SearchStrategy[str]:
    return st.from_regex(r"\A[a-z0-9][a-z0-9_-]{63}\Z")


def ids(known: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(known), max_id(), st.from_regex(ID_PATTERN, fullmatch=True))


def times() -> st.SearchStrategy[datetime]:
    now = protocol.utcnow()
    edges = st.sampled_from(
        [datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)]
        + [datetime.min.replace(tzinfo=o) for o in OFFSETS]
        + [datetime.max.replace(tzinfo=o) for o in OFFSETS]
    )
    anywhere = st.datetimes(timezones=st.sampled_from(OFFSETS))
    near = st.timedeltas(min_value=timedelta(days=-400), max_value=timedelta(days=3)).map(
        lambda delta: now + delta
    )
    return st.one_of(edges, anywhere, near)


def credentials() -> st.SearchStrategy[Credential]:
    badge = st.from_regex(r"\A[0-9A-F]{4,64}\Z").map(lambda uid: Credential(value=uid))
    code = st.from_regex(r"\A[0-9A-Za-z_-]{4,64}\Z").map(
        lambda value: Credential(kind=CredentialKind.PASS, value=value)
    )
    return st.one_of(st.just(Credential(value="04A1B2C3D4")), badge, code)


event_ids = st.from_regex(r"\A[A-Za-z0-9_-]{8,64}\Z")
offline = st.none() | st.builds(
    OfflineDecision,
    granted=st.booleans(),
    reason=st.sampled_from(list(Reason)),
    allowlist_version=st.none() | st.integers(min_value=0, max_value=2**63 - 1),
)
payloads = st.one_of(
    st.builds(
        Tap,
        event_id=event_ids,
        door=ids(DOORS),
        credential=credentials(),
        reader=st.text(max_size=32),
        at=times(),
        offline=offline,
    ),
    st.builds(
        DoorEvent,
        event_id=event_ids,
        door=ids(DOORS),
        state=st.sampled_from(list(DoorState)),
        at=times(),
    ),
    st.builds(DeskEvent, event_id=event_ids, desk=ids(DESKS), occupied=st.booleans(), at=times()),
    st.builds(
        Status,
        state=st.sampled_from(list(DeviceState)),
        software=st.text(max_size=40),
        started_at=times(),
        at=times(),
        uptime_seconds=st.floats(min_value=0, allow_nan=False, allow_infinity=False),
        allowlist_version=st.none() | st.integers(min_value=0, max_value=2**63 - 1),
        allowlist_issued_at=st.none() | times(),
        outbox_depth=st.integers(min_value=0, max_value=2**63 - 1),
        outbox_dropped=st.integers(min_value=0, max_value=2**63 - 1),
    ),
)
CHANNELS: dict[type[Any], Channel] = {
    Tap: Channel.TAP,
    DoorEvent: Channel.DOOR,
    DeskEvent: Channel.DESK,
    Status: Channel.STATUS,
}
messages = st.lists(
    st.tuples(
        st.sampled_from([SITE, SITE, "elsewhere"]),
        st.sampled_from(SENDERS),
        payloads,
        st.booleans(),
    ),
    min_size=1,
    max_size=12,
)


@pytest.fixture
async def space(rig: Rig) -> Rig:
    with rig.gateway.store.session() as session:
        for device in (GOOD_DEVICE, OTHER_DEVICE):
            session.add(Device(id=device, site=SITE, kind=DeviceKind.DOOR_CONTROLLER))
        session.flush()
        session.add(Door(id=GOOD_DOOR, name="Good", zone_id="lobby", device_id=GOOD_DEVICE))
        session.add(Door(id=OTHER_DOOR, name="Back", zone_id="lobby", device_id=OTHER_DEVICE))
    add_desk_node(rig.gateway.store, {"desk-1": "lobby"})
    add_desk_node(rig.gateway.store, {"desk-2": "lobby"}, device=OTHER_NODE)
    rig.gateway.reload_policy()
    return rig


def outcomes(counters: dict[str, int]) -> int:
    return sum(v for k, v in counters.items() if k.startswith(("accepted_", "rejected_")))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=messages)
async def test_hostile_devices_cannot_stop_mislead_or_bloat_the_gateway(
    space: Rig, batch: list[tuple[str, str, Any, bool]]
) -> None:
    rig = space
    ingest = rig.gateway.ingest
    assert ingest is not None
    before = dict(ingest.counters)
    good = tap_for(rig.space.ADA_BADGE, f"good-{ingest.counters['received']:010d}", door=GOOD_DOOR)
    async with device_client(rig.broker) as device:
        await device.subscribe(protocol.topic(SITE, GOOD_DEVICE, Channel.DECISION), qos=1)
        for site, sender, payload, retain in batch:
            topic = protocol.topic(site, sender, CHANNELS[type(payload)])
            await device.publish(topic, protocol.encode(payload), qos=1, retain=retain)
        await device.publish(
            protocol.topic(SITE, GOOD_DEVICE, Channel.TAP), protocol.encode(good), qos=1
        )
        decision = await next_decision(device, good.event_id)
    await asyncio.wait_for(rig.gateway.writer.join(), 10)  # a stuck writer never joins
    app = create_app(rig.gateway)
    app.state.gateway = rig.gateway
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://varco") as api:
        health = await api.get("/healthz")

    assert decision.granted  # the good door is answered, by the gateway, whatever came before
    after = dict(ingest.counters)
    # Every message is either accepted or refused, and counted as such (retained ones of
    # earlier batches may come again on a reconnect: at least this batch, then).
    received = after["received"] - before.get("received", 0)
    assert received >= len(batch) + 1
    assert outcomes(after) - outcomes(before) == received
    assert (health.status_code, health.json()["status"]) == (200, "ok")
    # Every message handled was acknowledged (the door controller's own may still be on its way).
    await eventually(lambda: not ingest._pending)
    assert not rig.gateway.failed
    # Bounded: only what is registered, or a fixed size.
    assert set(rig.gateway.occupancy.desks) <= {"desk-1", "desk-2"}
    assert set(rig.gateway.occupancy.doors) <= {FRONT_DOOR, OFFICE_DOOR, OTHER_DOOR, GOOD_DOOR}
    assert len(ingest._recent) <= RECENT_DECISIONS
    assert len(ingest._taps._tokens) <= len(rig.gateway.policy().devices)
    assert isinstance(ingest._refusals, RefusalLog)
    assert len(ingest._refusals._windows) <= 10_001
