"""The store: idempotent event inserts, the policy snapshot, UTC times, the event writer."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError

from gateway.access import BadgeRule, DoorRule, MemberRule
from gateway.store import Store
from gateway.store.models import (
    AccessEvent,
    Base,
    DeskEventRecord,
    Device,
    Door,
    DoorEventRecord,
    Member,
    SetAsideRecord,
)
from gateway.store.policy import load_policy
from gateway.store.records import insert_new
from gateway.store.writer import EventWriter, Record, RecordKind
from tests import factories
from tests.conftest import free_port
from tests.factories import (
    DOOR_DEVICE,
    FRONT_DOOR,
    OFFICE_DOOR,
    SITE,
    UNLOCK_SECONDS,
    make_space,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
ROME = timezone(timedelta(hours=1))


def access_row(event_id: str, at: datetime = T0) -> dict[str, Any]:
    return factories.access_row(event_id, at)


def door_row(event_id: str, at: datetime = T0, state: str = "opened") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "site": SITE,
        "device_id": DOOR_DEVICE,
        "door_id": FRONT_DOOR,
        "state": state,
        "at": at,
    }


def desk_row(event_id: str, at: datetime = T0) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "site": SITE,
        "device_id": "desk-node-1",
        "desk_id": "desk-7",
        "occupied": True,
        "at": at,
    }


KINDS = ["access", "door", "desk"]
ROWS: dict[str, Callable[[str], dict[str, Any]]] = {
    "access": access_row,
    "door": door_row,
    "desk": desk_row,
}
TABLES: dict[str, type[Base]] = {
    "access": AccessEvent,
    "door": DoorEventRecord,
    "desk": DeskEventRecord,
}


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store(database_url) as store:
        store.create_schema()
        yield store


def stored(store: Store, kind: str) -> list[str]:
    """Return the event ids of ``kind`` in the store, sorted."""
    table = TABLES[kind].__table__
    with store.session() as session:
        return sorted(session.scalars(select(table.c.event_id)))


@pytest.mark.parametrize("kind", KINDS)
def test_insert_new_returns_only_the_ids_not_stored_yet(store: Store, kind: str) -> None:
    rows = [ROWS[kind](f"{kind}-{n}") for n in range(3)]

    with store.session() as session:
        first = insert_new(session, kind, rows)
    with store.session() as session:
        again = insert_new(session, kind, rows)
    with store.session() as session:
        mixed = insert_new(session, kind, [rows[0], ROWS[kind](f"{kind}-3"), rows[2]])
    with store.session() as session:
        nothing = insert_new(session, kind, [])

    assert (first, again, mixed, nothing) == (
        {f"{kind}-0", f"{kind}-1", f"{kind}-2"},
        set(),
        {f"{kind}-3"},
        set(),
    )
    assert stored(store, kind) == [f"{kind}-{n}" for n in range(4)]


@pytest.mark.parametrize("kind", KINDS)
def test_insert_new_counts_a_duplicate_within_one_batch_once(store: Store, kind: str) -> None:
    original, other = ROWS[kind]("e-1"), ROWS[kind]("e-2")

    with store.session() as session:
        new = insert_new(session, kind, [original, other, dict(original)])

    assert new == {"e-1", "e-2"}
    assert stored(store, kind) == ["e-1", "e-2"]


def test_load_policy_builds_the_space(store: Store) -> None:
    space = make_space(store)

    with store.session() as session:
        policy = load_policy(session, version=7)

    assert policy.version == 7
    assert dict(policy.members) == {
        space.ada: MemberRule(space.ada, "Ada Lovelace", active=True, plan="private-office"),
        space.grace: MemberRule(space.grace, "Grace Hopper", active=True, plan="hot-desk"),
        space.linus: MemberRule(space.linus, "Linus Torvalds", active=False, plan="hot-desk"),
    }
    assert {plan.id: plan.zones for plan in policy.plans.values()} == {
        "hot-desk": frozenset({"lobby"}),
        "private-office": frozenset({"lobby", "offices"}),
    }
    assert dict(policy.badges) == {
        space.ADA_BADGE: BadgeRule(space.ADA_BADGE, space.ada, active=True),
        space.GRACE_BADGE: BadgeRule(space.GRACE_BADGE, space.grace, active=True),
        space.LINUS_BADGE: BadgeRule(space.LINUS_BADGE, space.linus, active=True),
        space.LOST_BADGE: BadgeRule(space.LOST_BADGE, space.grace, active=False),
    }
    assert dict(policy.doors) == {
        FRONT_DOOR: DoorRule(FRONT_DOOR, "lobby", DOOR_DEVICE, UNLOCK_SECONDS),
        OFFICE_DOOR: DoorRule(OFFICE_DOOR, "offices", DOOR_DEVICE, UNLOCK_SECONDS),
    }


def test_load_policy_of_an_empty_store_is_empty(store: Store) -> None:
    with store.session() as session:
        policy = load_policy(session)

    assert (dict(policy.members), dict(policy.badges), dict(policy.doors)) == ({}, {}, {})
    assert policy.version == 0


def test_times_come_back_aware_in_utc(store: Store) -> None:
    space = make_space(store)
    tapped_at = datetime(2025, 3, 3, 10, 0, tzinfo=ROME)
    with store.session() as session:
        insert_new(session, "access", [access_row("e-1", at=tapped_at)])

    with store.session() as session:
        if store.engine.dialect.name == "postgresql":
            # The server answers in the session's zone; the store must still hand back UTC.
            session.execute(text("SET TIME ZONE 'America/New_York'"))
        event = session.get_one(AccessEvent, "e-1")
        member = session.get_one(Member, space.ada)
        times = [event.tapped_at, event.decided_at, event.recorded_at, member.created_at]

    assert [t.tzinfo for t in times] == [UTC] * 4
    assert event.tapped_at == tapped_at
    assert event.tapped_at.hour == 9
    assert abs(event.recorded_at - datetime.now(UTC)) < timedelta(minutes=1)


def test_a_naive_time_is_refused(store: Store) -> None:
    with pytest.raises(StatementError, match="naive datetime"), store.session() as session:
        insert_new(session, "access", [access_row("e-1", at=datetime(2025, 3, 3, 9, 0))])

    assert stored(store, "access") == []


@pytest.fixture
async def writer(store: Store) -> AsyncIterator[EventWriter]:
    writer = EventWriter(store)
    task = asyncio.create_task(writer.run(), name="event-writer")
    yield writer
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class Outcomes:
    """What ``on_committed`` was told, per event id (per device for a status), in order."""

    def __init__(self) -> None:
        self.calls: defaultdict[str, list[bool]] = defaultdict(list)

    def record(self, kind: RecordKind, row: dict[str, Any]) -> Record:
        key: str = row["event_id"] if "event_id" in row else row["device_id"]

        def on_committed(is_new: bool) -> None:
            self.calls[key].append(is_new)

        return Record(kind, row, on_committed)


async def test_the_writer_commits_new_records_and_reports_redeliveries(
    store: Store, writer: EventWriter
) -> None:
    outcomes = Outcomes()
    records = [
        outcomes.record("access", access_row("access-1")),
        outcomes.record("door", door_row("door-1")),
        outcomes.record("desk", desk_row("desk-1")),
    ]

    for record in records:
        writer.submit(record)
    await writer.join()
    committed = {kind: stored(store, kind) for kind in KINDS}
    for record in records:
        writer.submit(record)
    await writer.join()

    assert committed == {"access": ["access-1"], "door": ["door-1"], "desk": ["desk-1"]}
    assert outcomes.calls == {
        "access-1": [True, False],
        "door-1": [True, False],
        "desk-1": [True, False],
    }
    assert (writer.committed, writer.duplicates, writer.depth) == (3, 3, 0)
    assert {kind: stored(store, kind) for kind in KINDS} == committed


async def test_join_waits_until_every_record_is_committed(
    store: Store, writer: EventWriter
) -> None:
    outcomes = Outcomes()

    for n in range(50):
        writer.submit(outcomes.record("access", access_row(f"e-{n:02}")))
    queued = (writer.depth, dict(outcomes.calls))
    await writer.join()

    assert queued == (50, {})
    assert outcomes.calls == {f"e-{n:02}": [True] for n in range(50)}
    assert stored(store, "access") == [f"e-{n:02}" for n in range(50)]
    assert writer.depth == 0


async def test_the_writer_reports_a_duplicate_within_one_batch_once(
    store: Store, writer: EventWriter
) -> None:
    outcomes = Outcomes()

    # Submitted without yielding, the original and its redelivery land in one batch.
    writer.submit(outcomes.record("access", access_row("e-1")))
    writer.submit(outcomes.record("access", access_row("e-1")))
    await writer.join()

    assert stored(store, "access") == ["e-1"]
    assert outcomes.calls == {"e-1": [True, False]}
    assert (writer.committed, writer.duplicates) == (1, 1)


async def test_a_row_the_database_refuses_does_not_hold_back_the_others(
    store: Store, writer: EventWriter
) -> None:
    outcomes = Outcomes()
    broken = {**access_row("e-broken"), "door_id": None}

    writer.submit(outcomes.record("access", access_row("e-1")))
    writer.submit(outcomes.record("access", broken))
    writer.submit(outcomes.record("access", access_row("e-2")))
    await writer.join()

    assert stored(store, "access") == ["e-1", "e-2"]
    assert outcomes.calls == {"e-1": [True], "e-broken": [False], "e-2": [True]}
    assert writer.set_aside == 1
    [kept] = set_aside_rows(store)
    assert (kept.kind, kept.event_id) == ("access", "e-broken")
    assert kept.reason.startswith("refused by the database: ")


async def test_a_record_the_code_cannot_write_does_not_stop_the_writer(
    store: Store, writer: EventWriter, caplog: pytest.LogCaptureFixture
) -> None:
    outcomes = Outcomes()
    unwritable = {"device_id": "door-ctl-1"}  # a status record without its status

    writer.submit(outcomes.record("desk", desk_row("desk-1")))
    writer.submit(outcomes.record("status", unwritable))
    writer.submit(outcomes.record("desk", desk_row("desk-2")))
    await asyncio.wait_for(writer.join(), 5)  # a dead writer never joins

    assert stored(store, "desk") == ["desk-1", "desk-2"]
    assert outcomes.calls == {"desk-1": [True], "door-ctl-1": [False], "desk-2": [True]}
    assert writer.set_aside == 1
    assert "event record set aside: status: cannot be written: KeyError" in caplog.text
    [kept] = set_aside_rows(store)
    assert (kept.kind, kept.row) == ("status", {"device_id": "door-ctl-1"})


# Schema-valid times that overflow once converted to UTC (issue 10, finding 1).
OUT_OF_CALENDAR = [
    datetime(1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=14))),
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-14))),
]


def set_aside_rows(store: Store) -> list[SetAsideRecord]:
    with store.session() as session:
        return list(session.scalars(select(SetAsideRecord).order_by(SetAsideRecord.id)))


@pytest.mark.parametrize("at", OUT_OF_CALENDAR, ids=["year-1-plus-14", "year-9999-minus-14"])
async def test_a_time_outside_the_calendar_is_set_aside_and_the_rest_go_on(
    store: Store, writer: EventWriter, at: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    outcomes = Outcomes()

    writer.submit(outcomes.record("access", access_row("e-1")))
    writer.submit(outcomes.record("access", access_row("e-bad", at=at)))
    writer.submit(outcomes.record("door", door_row("d-bad", at=at)))
    writer.submit(outcomes.record("access", access_row("e-2")))
    # Once retried forever: the writer never joined, and nothing after it was acknowledged.
    await asyncio.wait_for(writer.join(), 10)

    assert stored(store, "access") == ["e-1", "e-2"]
    assert outcomes.calls == {"e-1": [True], "e-bad": [False], "d-bad": [False], "e-2": [True]}
    assert (writer.set_aside, writer.failures, writer.stalled) == (2, 0, False)
    kept = set_aside_rows(store)
    assert [(k.kind, k.event_id) for k in kept] == [("access", "e-bad"), ("door", "d-bad")]
    assert all("OverflowError" in k.reason for k in kept)
    assert kept[0].row["tapped_at"] == at.isoformat()  # as the device sent it
    assert kept[0].row["credential"] == "<redacted>"
    assert factories.Space.ADA_BADGE not in caplog.text


async def test_a_database_that_is_away_is_retried_and_the_writer_says_it_is_stalled() -> None:
    # A real fault of the database: nothing listens where it should be.
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/varco?connect_timeout=1"
    outcomes = Outcomes()
    with Store(url) as away:
        writer = EventWriter(away, max_backoff=0.1)
        writer.stall_seconds = 0.3
        task = asyncio.create_task(writer.run())
        try:
            writer.submit(outcomes.record("access", access_row("e-1")))
            await asyncio.sleep(1.0)
            seen = (writer.stalled, writer.depth, writer.set_aside, dict(outcomes.calls))
            assert writer.failures >= 2  # retried, not set aside
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    assert seen == (True, 1, 0, {})


async def test_a_failing_acknowledgement_does_not_stop_the_writer(
    store: Store, writer: EventWriter, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_ack(_is_new: bool) -> None:
        raise RuntimeError("the broker connection went away")

    writer.submit(Record("access", access_row("e-1"), broken_ack))
    await asyncio.wait_for(writer.join(), 5)  # a dead writer never joins
    writer.submit(Record("access", access_row("e-2")))
    await asyncio.wait_for(writer.join(), 5)  # a dead writer never joins

    assert stored(store, "access") == ["e-1", "e-2"]
    assert "the broker connection went away" in caplog.text


async def test_a_door_shows_its_newest_reported_state(store: Store, writer: EventWriter) -> None:
    make_space(store)
    outcomes = Outcomes()

    # The newer event arrives first; the door must still end up in its state.
    writer.submit(outcomes.record("door", door_row("d-2", T0 + timedelta(seconds=5), "closed")))
    writer.submit(outcomes.record("door", door_row("d-1", T0, "opened")))
    await writer.join()

    with store.session() as session:
        states = {door.id: door.state for door in session.scalars(select(Door))}
    assert states == {FRONT_DOOR: "closed", OFFICE_DOOR: None}
    assert outcomes.calls == {"d-1": [True], "d-2": [True]}


async def test_a_status_record_updates_its_device(store: Store, writer: EventWriter) -> None:
    make_space(store)
    outcomes = Outcomes()
    status = {"state": "online", "software": "varco-edge 0.1.0", "at": T0.astimezone(ROME)}

    writer.submit(outcomes.record("status", {"device_id": DOOR_DEVICE, "status": status}))
    await writer.join()

    with store.session() as session:
        device = session.get_one(Device, DOOR_DEVICE)
        seen = (device.state, device.software, device.last_status_at)
    assert seen == ("online", "varco-edge 0.1.0", T0)
    assert outcomes.calls == {DOOR_DEVICE: [True]}
