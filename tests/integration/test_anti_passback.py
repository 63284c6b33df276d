"""Anti-passback on a real mosquitto: kept across a gateway restart and after offline taps."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
from sqlalchemy import update

from gateway.service import Gateway
from gateway.store import Store
from gateway.store.models import Zone
from tests.conftest import Mosquitto
from tests.factories import DOOR_DEVICE, FRONT_DOOR, SITE, Space, make_space
from tests.integration.conftest import (
    device_client,
    eventually,
    gateway_settings,
    next_decision,
    tap_for,
)
from varco import protocol
from varco.protocol import Channel, Decision, OfflineDecision, Reason


def anti_passback_lobby(database: Path) -> Space:
    with Store(f"sqlite:///{database}") as store:
        space = make_space(store)
        with store.session() as session:
            session.execute(update(Zone).where(Zone.id == "lobby").values(anti_passback=True))
    return space


async def tap(mosquitto: Mosquitto, uid: str, event_id: str) -> Decision:
    async with device_client(mosquitto) as device:
        await device.publish(
            protocol.topic(SITE, DOOR_DEVICE, Channel.TAP),
            protocol.encode(tap_for(uid, event_id)),
            qos=1,
        )
        return await next_decision(device, event_id)


async def test_who_is_inside_survives_a_gateway_restart(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    database = tmp_path / "varco.db"
    space = anti_passback_lobby(database)
    settings = gateway_settings(database, mosquitto)

    async with Gateway(settings) as gateway:
        assert gateway.ingest is not None
        await asyncio.wait_for(gateway.ingest.connected.wait(), timeout=5)
        entered = await tap(mosquitto, space.ADA_BADGE, "ada-enters-0001")
        await gateway.writer.join()
    async with Gateway(settings) as restarted:  # a redeploy
        assert restarted.ingest is not None
        await asyncio.wait_for(restarted.ingest.connected.wait(), timeout=5)
        again = await tap(mosquitto, space.ADA_BADGE, "ada-again-00001")

    assert entered.granted
    assert (again.granted, again.reason) == (False, Reason.ANTI_PASSBACK)


async def test_a_door_that_let_a_member_in_offline_counts_them_inside(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    database = tmp_path / "varco.db"
    space = anti_passback_lobby(database)

    async with Gateway(gateway_settings(database, mosquitto)) as gateway:
        assert gateway.ingest is not None
        await asyncio.wait_for(gateway.ingest.connected.wait(), timeout=5)
        # Sent on reconnect: the door decided this one itself, while the gateway was away.
        offline = msgspec.structs.replace(
            tap_for(space.GRACE_BADGE, "grace-offline-01"),
            offline=OfflineDecision(granted=True, reason=Reason.GRANTED, allowlist_version=1),
        )
        async with device_client(mosquitto) as device:
            await device.publish(
                protocol.topic(SITE, DOOR_DEVICE, Channel.TAP), protocol.encode(offline), qos=1
            )
        ingest = gateway.ingest
        await eventually(lambda: ingest.counters["offline_tap"] == 1)
        again = await tap(mosquitto, space.GRACE_BADGE, "grace-again-001")

    assert (again.granted, again.reason) == (False, Reason.ANTI_PASSBACK)
    assert offline.door == FRONT_DOOR
