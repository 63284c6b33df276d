"""A deleted badge and an erased member stop opening doors, offline too: the doors' allow-lists
follow, on a real mosquitto with a real edge agent."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.service import Gateway
from gateway.store import Store
from gateway.store.erasure import erase_member
from gateway.store.models import Badge, Member
from tests.conftest import Mosquitto
from tests.factories import FRONT_DOOR, Space, make_space
from tests.integration.conftest import eventually, gateway_settings, running_door_controller
from varco import protocol

pytestmark = pytest.mark.integration


async def test_a_deleted_badge_and_an_erased_member_leave_the_doors_allowlists(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    database = tmp_path / "varco.db"
    with Store(f"sqlite:///{database}") as store:
        space = make_space(store)
    async with (
        Gateway(gateway_settings(database, mosquitto)) as gateway,
        running_door_controller(mosquitto, tmp_path, database) as running,
    ):
        cache = running.agent.cache
        await eventually(lambda: cache.current is not None)
        cache.clock = protocol.utcnow

        def offline(uid: str) -> str:
            verdict = cache.decide(
                FRONT_DOOR, protocol.credential_of(uid), fail_mode="secure", unlock_seconds=1.0
            )
            return verdict.reason.value

        before = (offline(Space.ADA_BADGE), offline(Space.GRACE_BADGE))
        with gateway.store.session() as session:  # as DELETE /badges/{id} does
            session.delete(session.scalars(select(Badge).where(Badge.uid == Space.ADA_BADGE)).one())
        gateway.policy_changed()
        with gateway.store.session() as session:  # as POST /members/{id}/erase does
            member = session.get(Member, space.grace)
            assert member is not None
            erase_member(session, member)
        gateway.policy_changed()
        # The door hears of both as an update to its list, within seconds.
        await eventually(
            lambda: "granted" not in (offline(Space.ADA_BADGE), offline(Space.GRACE_BADGE))
        )
        after = (offline(Space.ADA_BADGE), offline(Space.GRACE_BADGE))

    assert before == ("granted", "granted")
    assert after == ("not_in_allowlist", "not_in_allowlist")
