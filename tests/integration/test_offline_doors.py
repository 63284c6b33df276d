"""Doors keep working without the broker or the gateway, and nothing they saw is lost."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from edge_agent.door import Outcome
from edge_agent.readers import SimulatedReader
from gateway.service import Gateway
from gateway.store import Store
from gateway.store.models import AccessEvent, Badge
from tests.conftest import Mosquitto
from tests.factories import FRONT_DOOR, OFFICE_DOOR, Space, make_space
from tests.integration.conftest import (
    DECISION_TIMEOUT,
    FRONT_RELAY,
    Rig,
    eventually,
    gateway_settings,
    running_door_controller,
)
from varco import protocol
from varco.protocol import Channel, DeskEvent

pytestmark = pytest.mark.integration

TIMEOUT = DECISION_TIMEOUT  # the test door controller's decision_timeout_seconds
SLACK = 0.05


async def timed_tap(rig: Rig, door: str, uid: str) -> tuple[Outcome, float]:
    reader = rig.agent.doors[door].reader
    assert isinstance(reader, SimulatedReader)
    started = time.monotonic()
    reader.present(uid)
    outcome = await asyncio.wait_for(rig.outcomes.get(), timeout=5)
    return outcome, time.monotonic() - started


def revoke(rig: Rig, uid: str) -> None:
    with rig.gateway.store.session() as session:
        session.execute(update(Badge).where(Badge.uid == uid).values(active=False))
    rig.gateway.reload_policy()


async def test_with_the_broker_down_doors_decide_from_their_allowlist(rig: Rig) -> None:
    cache = rig.agent.cache
    await eventually(lambda: cache.current is not None)
    first = cache.current
    assert first is not None
    revoke(rig, Space.GRACE_BADGE)  # before the outage: the door must learn it
    await eventually(lambda: cache.current is not None and cache.current.version > first.version)

    rig.broker.stop()
    await eventually(lambda: not rig.agent.link.connected.is_set())
    ada, ada_took = await timed_tap(rig, FRONT_DOOR, Space.ADA_BADGE)
    grace, grace_took = await timed_tap(rig, FRONT_DOOR, Space.GRACE_BADGE)
    stranger, _ = await timed_tap(rig, FRONT_DOOR, Space.UNKNOWN_BADGE)

    assert (ada.granted, ada.reason, ada.answered) == (True, "granted", False)
    assert ada_took < TIMEOUT + SLACK
    assert rig.agent.pin_factory.pin(FRONT_RELAY).state  # unlocked
    assert (grace.granted, grace.reason) == (False, "not_in_allowlist")
    assert grace_took < TIMEOUT + SLACK
    assert (stranger.granted, stranger.reason) == (False, "not_in_allowlist")

    # Past its expiry the list is not trusted: each door falls back to its fail mode.
    cache.clock = lambda: protocol.utcnow() + timedelta(days=2)
    shut, _ = await timed_tap(rig, FRONT_DOOR, Space.ADA_BADGE)
    opened, _ = await timed_tap(rig, OFFICE_DOOR, Space.UNKNOWN_BADGE)
    assert (shut.granted, shut.reason) == (False, "no_allowlist")
    assert (opened.granted, opened.reason) == (True, "fail_safe")
    assert rig.agent.outbox.depth >= 5

    rig.broker.start()
    offline = [ada, grace, stranger, shut, opened]
    await eventually(lambda: rig.agent.outbox.depth == 0, within=15)
    await rig.gateway.writer.join()

    def recorded() -> list[AccessEvent]:
        ids = [o.event_id for o in offline]
        with rig.gateway.store.session() as session:
            return list(session.scalars(select(AccessEvent).where(AccessEvent.event_id.in_(ids))))

    # The broker has every event once the outbox is empty; the gateway follows shortly.
    await eventually(
        lambda: len(recorded()) == len(offline) and all(e.decided_offline for e in recorded()),
        within=10,
    )
    events = {e.event_id: e for e in recorded()}
    for outcome in offline:
        event = events[outcome.event_id]
        assert event.decided_offline
        assert (event.granted, event.reason) == (outcome.granted, outcome.reason)
    assert events[ada.event_id].member_id == rig.space.ada
    assert events[ada.event_id].allowlist_version is not None


async def test_with_the_gateway_down_the_door_waits_its_timeout_then_decides(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    database = tmp_path / "varco.db"
    with Store(f"sqlite:///{database}") as store:
        space = make_space(store)
    settings = gateway_settings(database, mosquitto)
    async with running_door_controller(mosquitto, tmp_path, database) as running:
        agent, outcomes = running.agent, running.outcomes
        async with Gateway(settings):
            await eventually(lambda: agent.cache.current is not None)
        # The gateway is gone; the broker is still here.
        reader = agent.doors[FRONT_DOOR].reader
        assert isinstance(reader, SimulatedReader)
        started = time.monotonic()
        reader.present(space.ADA_BADGE)
        outcome = await asyncio.wait_for(outcomes.get(), timeout=5)
        took = time.monotonic() - started

        assert (outcome.granted, outcome.reason, outcome.answered) == (True, "granted", False)
        assert TIMEOUT <= took < TIMEOUT + SLACK

        async with Gateway(settings) as gateway:
            await eventually(lambda: agent.outbox.depth == 0, within=10)
            await gateway.writer.join()

            def events() -> list[AccessEvent]:
                with gateway.store.session() as session:
                    return list(session.scalars(select(AccessEvent)))

            # The tap reached the broker before the door gave up waiting: the gateway may
            # first record it as an online tap, then take the door's own decision over it.
            await eventually(lambda: len(events()) == 1 and events()[0].decided_offline)
            [event] = events()
            assert (event.event_id, event.decided_offline) == (outcome.event_id, True)


async def test_a_tap_does_not_queue_behind_a_backlog_of_events(rig: Rig) -> None:
    rig.broker.stop()
    await eventually(lambda: not rig.agent.link.connected.is_set())
    for n in range(2000):  # an outage's worth of desk changes, waiting to be sent
        rig.agent.link.send(
            Channel.DESK,
            DeskEvent(
                event_id=f"backlog-{n:06d}",
                desk="desk-1",
                occupied=n % 2 == 0,
                at=protocol.utcnow(),
            ),
        )
    rig.broker.start()
    await eventually(lambda: rig.agent.link.connected.is_set(), within=10)
    assert rig.agent.outbox.depth > 1000  # the backlog is still draining

    outcome, took = await timed_tap(rig, FRONT_DOOR, Space.ADA_BADGE)

    assert (outcome.granted, outcome.answered) == (True, True)
    assert took < TIMEOUT
    await eventually(lambda: rig.agent.outbox.depth == 0, within=60)
