"""Changes to the model reach every replica and every door, without stopping taps.

Real mosquitto, real gateways on SQLite or PostgreSQL, a real edge agent: a change made
through one replica is decided by the others within a second; a door that was away gets what
it missed; a tap is answered while a full rebuild runs.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from edge_agent.readers import SimulatedReader
from gateway.service import Gateway
from gateway.settings import Settings
from gateway.store import Store
from gateway.store.models import Badge, Member, MemberStatus
from tests.conftest import Mosquitto
from tests.factories import DOOR_DEVICE, FRONT_DOOR, SITE, Space, make_space
from tests.integration.conftest import (
    device_client,
    eventually,
    gateway_settings,
    running_door_controller,
    tap_for,
)
from varco import protocol
from varco.protocol import Channel, Decision

pytestmark = pytest.mark.integration


def suspend(store: Store, member_id: int) -> None:
    with store.session() as session:
        member = session.get(Member, member_id)
        assert member is not None
        member.status = MemberStatus.SUSPENDED


def revoke_badge(store: Store, uid: str) -> None:
    with store.session() as session:
        badge = session.scalars(select(Badge).where(Badge.uid == uid)).one()
        badge.active = False


@pytest.mark.postgres
async def test_replicas_on_postgresql_decide_by_a_change_made_through_one(
    mosquitto: Mosquitto, postgres_url: str
) -> None:
    with Store(postgres_url) as store:
        space = make_space(store)
    base = Settings(database_url=postgres_url, mqtt_port=mosquitto.port)
    # Not a share group: each replica answers every tap, so both answers can be read.
    first_settings = base.model_copy(update={"gateway_id": "gateway-a"})
    second_settings = base.model_copy(update={"gateway_id": "gateway-b"})
    async with (
        Gateway(first_settings) as first,
        Gateway(second_settings) as second,
        device_client(mosquitto) as door,
    ):
        for replica in (first, second):
            assert replica.ingest is not None
            await asyncio.wait_for(replica.ingest.connected.wait(), timeout=5)
        await asyncio.sleep(0.3)  # both subscriptions are in place

        async def answers(event_id: str) -> list[Decision]:
            await door.publish(
                protocol.topic(SITE, DOOR_DEVICE, Channel.TAP),
                protocol.encode(tap_for(Space.ADA_BADGE, event_id)),
                qos=1,
            )
            found: list[Decision] = []
            async with asyncio.timeout(5):
                async for message in door.messages:
                    assert isinstance(message.payload, bytes)
                    decision = protocol.decode_as(Decision, message.payload)
                    if decision.event_id == event_id:
                        found.append(decision)
                    if len(found) == 2:
                        return found
            raise AssertionError("fewer than two answers")  # pragma: no cover

        before = await answers(uuid.uuid4().hex)
        # Through the first replica, as its API does: change, then apply at once.
        suspend(first.store, space.ada)
        first.policy_changed()
        await asyncio.sleep(1.0)  # the second replica reads the feed every 0.25 s
        after = await answers(uuid.uuid4().hex)

        # One replica publishes the doors' lists; the other keeps its book ready.
        leaders = [r for r in (first, second) if r.allowlists and r.allowlists.published]
        assert len(leaders) == 1

    assert [d.reason.value for d in before] == ["granted", "granted"]
    assert [d.reason.value for d in after] == ["member_suspended", "member_suspended"]


async def test_a_door_that_was_away_gets_the_changes_it_missed(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    database = tmp_path / "varco.db"
    with Store(f"sqlite:///{database}") as store:
        space = make_space(store)
    async with Gateway(gateway_settings(database, mosquitto)) as gateway:
        assert gateway.allowlists is not None
        async with running_door_controller(mosquitto, tmp_path, database) as running:
            await eventually(lambda: running.agent.cache.current is not None)
        # The door is away: these updates are not queued for it, and the retained whole list
        # the broker holds predates them.
        suspend(gateway.store, space.grace)
        gateway.policy_changed()
        revoke_badge(gateway.store, Space.ADA_BADGE)
        gateway.policy_changed()
        book = gateway.allowlists.book
        await eventually(lambda: not book.controllers[DOOR_DEVICE].pending)

        async with running_door_controller(mosquitto, tmp_path, database) as running:
            current = book.controllers[DOOR_DEVICE]
            cache = running.agent.cache
            await eventually(
                lambda: cache.current is not None and cache.current.version >= current.version
            )
            cache.clock = protocol.utcnow

            def offline(uid: str) -> str:
                verdict = cache.decide(
                    FRONT_DOOR,
                    protocol.credential_of(uid),
                    fail_mode="secure",
                    unlock_seconds=1.0,
                )
                return verdict.reason.value

            assert offline(Space.GRACE_BADGE) == "not_in_allowlist"
            assert offline(Space.ADA_BADGE) == "not_in_allowlist"


def seed_members(store: Store, count: int) -> None:
    """Add ``count`` hot-desk members with a badge each, in bulk."""
    with store.session() as session:
        first = (session.scalar(select(func.max(Member.id))) or 0) + 1
        session.execute(
            insert(Member),
            [{"id": first + n, "name": f"Member {n}", "plan_id": "hot-desk"} for n in range(count)],
        )
        session.execute(
            insert(Badge),
            [{"uid": f"{0xA0000000 + n:010X}", "member_id": first + n} for n in range(count)],
        )


async def test_a_tap_is_answered_while_the_whole_model_is_read_again(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    database = tmp_path / "varco.db"
    with Store(f"sqlite:///{database}") as store:
        make_space(store)
        seed_members(store, 20_000)
    async with (
        Gateway(gateway_settings(database, mosquitto)) as gateway,
        running_door_controller(mosquitto, tmp_path, database) as running,
    ):
        rebuilding = threading.Event()
        done = threading.Event()

        def rebuild() -> None:
            rebuilding.set()
            for _ in range(3):  # the whole model, and so every door's list, again
                gateway.reload_policy()
            done.set()

        loop = asyncio.get_running_loop()
        worker = threading.Thread(target=rebuild)
        worker.start()
        try:
            await loop.run_in_executor(None, rebuilding.wait)
            reader = running.agent.doors[FRONT_DOOR].reader
            assert isinstance(reader, SimulatedReader)
            reader.present(Space.ADA_BADGE)
            outcome = await asyncio.wait_for(running.outcomes.get(), timeout=5)
            during = not done.is_set()
        finally:
            await loop.run_in_executor(None, worker.join)

    assert during, "the rebuilds ended before the tap was answered: nothing was shown"
    assert (outcome.granted, outcome.answered) == (True, True)
