"""Receipts: an edge keeps each event until the gateway says it is stored (or refused for good).

Real mosquitto, the gateway on SQLite, the door controller of ``tests.factories``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from edge_agent import link
from gateway.service import Gateway
from gateway.store import Store
from gateway.store.models import AccessEvent, DoorEventRecord
from tests.conftest import Mosquitto
from tests.factories import FRONT_DOOR, make_space
from tests.integration.conftest import (
    eventually,
    gateway_settings,
    running_door_controller,
)
from varco import protocol
from varco.protocol import Channel, DeskEvent, DoorEvent, DoorState

pytestmark = pytest.mark.integration


async def test_an_event_the_broker_delivered_to_no_one_is_sent_again_until_stored(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A broker that never saw the gateway's session (new, or restarted without its saved
    # state) acknowledges the event and delivers it to no one.
    monkeypatch.setattr(link, "RECEIPT_SECONDS", 0.5)
    database = tmp_path / "varco.db"
    with Store(f"sqlite:///{database}") as store:
        make_space(store)
    async with running_door_controller(mosquitto, tmp_path, database) as running:
        event = DoorEvent(
            event_id="nobody-heard-1",
            door=FRONT_DOOR,
            state=DoorState.OPENED,
            at=protocol.utcnow(),
        )
        running.agent.link.send(Channel.DOOR, event)
        await asyncio.sleep(1.2)  # sent, PUBACKed by the broker, sent again: no receipt
        assert running.agent.outbox.depth == 1

        async with Gateway(gateway_settings(database, mosquitto)) as gateway:
            await eventually(lambda: running.agent.outbox.depth == 0)
            await gateway.writer.join()
            with gateway.store.session() as session:
                stored = session.scalars(
                    select(DoorEventRecord.event_id).where(
                        DoorEventRecord.event_id == "nobody-heard-1"
                    )
                ).all()
    assert stored == ["nobody-heard-1"]


async def test_an_event_refused_for_good_is_forgotten_by_the_edge(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    database = tmp_path / "varco.db"
    with Store(f"sqlite:///{database}") as store:
        make_space(store)
    async with (
        Gateway(gateway_settings(database, mosquitto)) as gateway,
        running_door_controller(mosquitto, tmp_path, database) as running,
    ):
        assert gateway.ingest is not None
        # No such desk is registered: sent again, it would be refused again.
        made_up = DeskEvent(
            event_id="made-up-desk-1", desk="no-such-desk", occupied=True, at=protocol.utcnow()
        )
        running.agent.link.send(Channel.DESK, made_up)
        await eventually(lambda: running.agent.outbox.depth == 0)
        assert running.agent.link.refused == 1
        assert gateway.ingest.counters["rejected_unknown_desk"] == 1


async def test_taps_unanswered_in_a_row_are_then_decided_offline_at_once(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    # No gateway at all: the broker is up, nobody answers.
    database = tmp_path / "varco.db"
    with Store(f"sqlite:///{database}") as store:
        space = make_space(store)
    async with running_door_controller(mosquitto, tmp_path, database) as running:
        door = running.agent.doors[FRONT_DOOR]
        waited = []
        for _ in range(link.SILENT_TAPS + 2):
            asked = asyncio.get_running_loop().time()
            door.reader.present(space.ADA_BADGE)  # type: ignore[attr-defined]
            outcome = await asyncio.wait_for(running.outcomes.get(), timeout=10)
            waited.append(asyncio.get_running_loop().time() - asked)
            assert not outcome.answered
        timeout = door.config.decision_timeout_seconds
        # The first ones waited for the gateway; once silent, the door no longer waits.
        assert all(w >= timeout for w in waited[: link.SILENT_TAPS])
        assert all(w < timeout for w in waited[link.SILENT_TAPS :])
        # Every tap still leaves, as the door decided it, once the gateway is back.
        async with Gateway(gateway_settings(database, mosquitto)) as gateway:
            await eventually(lambda: running.agent.outbox.depth == 0, within=15)
            await gateway.writer.join()
            with gateway.store.session() as session:
                rows = session.scalars(select(AccessEvent)).all()
    assert len(rows) == link.SILENT_TAPS + 2
    assert all(row.decided_offline for row in rows)
