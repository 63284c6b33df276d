"""The badge-to-door loop end to end: real mosquitto, the gateway, an edge agent on MockFactory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import func, select

from edge_agent.agent import Agent, Outcome
from edge_agent.config import BrokerConfig, DoorConfig, EdgeConfig
from edge_agent.readers import SimulatedReader
from gateway.service import Gateway
from gateway.settings import Settings
from gateway.store import Store
from gateway.store.models import AccessEvent, Device
from tests.conftest import Mosquitto
from tests.factories import (
    DOOR_DEVICE,
    FRONT_DOOR,
    OFFICE_DOOR,
    SITE,
    UNLOCK_SECONDS,
    Space,
    make_space,
)
from varco import protocol, transport
from varco.protocol import Channel, Credential, Decision, Tap

pytestmark = pytest.mark.integration

FRONT_RELAY = 17
OFFICE_RELAY = 22


async def eventually(predicate: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {within}s: {predicate}")
        await asyncio.sleep(0.02)


@dataclass
class Rig:
    gateway: Gateway
    agent: Agent
    space: Space
    outcomes: asyncio.Queue[Outcome]
    broker: Mosquitto

    def relay_states(self, pin: int) -> list[tuple[float, bool]]:
        """Every state the relay pin has been in, each with the seconds since the one before."""
        return [(s.timestamp, bool(s.state)) for s in self.agent.pin_factory.pin(pin).states]

    async def present(self, door: str, uid: str) -> Outcome:
        reader = self.agent.doors[door].reader
        assert isinstance(reader, SimulatedReader)
        reader.present(uid)
        return await asyncio.wait_for(self.outcomes.get(), timeout=5)

    def access_events(self, event_id: str | None = None) -> list[AccessEvent]:
        with self.gateway.store.session() as session:
            query = select(AccessEvent)
            if event_id is not None:
                query = query.where(AccessEvent.event_id == event_id)
            return list(session.scalars(query))


def gateway_settings(database: Path, broker: Mosquitto) -> Settings:
    return Settings(
        database_url=f"sqlite:///{database}",
        mqtt_port=broker.port,
        gateway_id="gateway-test",
        policy_refresh_seconds=3600,
    )


def door_controller(broker: Mosquitto) -> Agent:
    return Agent(
        EdgeConfig(
            device_id=DOOR_DEVICE,
            site=SITE,
            broker=BrokerConfig(port=broker.port),
            pin_factory="mock",
            doors=[
                DoorConfig(id=FRONT_DOOR, relay_pin=FRONT_RELAY),
                DoorConfig(id=OFFICE_DOOR, relay_pin=OFFICE_RELAY),
            ],
        )
    )


@pytest.fixture
async def rig(mosquitto: Mosquitto, tmp_path: Path) -> AsyncIterator[Rig]:
    database = tmp_path / "varco.db"
    with Store(f"sqlite:///{database}") as store:
        space = make_space(store)
    async with Gateway(gateway_settings(database, mosquitto)) as gateway:
        assert gateway.ingest is not None
        await asyncio.wait_for(gateway.ingest.connected.wait(), timeout=5)
        agent = door_controller(mosquitto)
        outcomes: asyncio.Queue[Outcome] = asyncio.Queue()
        ready = asyncio.Event()
        task = asyncio.create_task(agent.run(ready))
        await asyncio.wait_for(ready.wait(), timeout=5)
        await asyncio.wait_for(agent.link.connected.wait(), timeout=5)
        for door in agent.doors.values():
            door.outcomes.append(outcomes.put_nowait)
        yield Rig(gateway, agent, space, outcomes, mosquitto)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def device_client(broker: Mosquitto) -> AsyncIterator[aiomqtt.Client]:
    """A bare MQTT client speaking as the door controller."""
    client = transport.client(
        transport.BrokerAddress(port=broker.port), identifier=f"{DOOR_DEVICE}-raw"
    )
    async with client:
        await client.subscribe(protocol.topic(SITE, DOOR_DEVICE, Channel.DECISION), qos=1)
        yield client


def tap_for(uid: str, event_id: str, door: str = FRONT_DOOR) -> Tap:
    return Tap(event_id=event_id, door=door, credential=Credential(value=uid), at=protocol.utcnow())


async def next_decision(client: aiomqtt.Client, event_id: str) -> Decision:
    async with asyncio.timeout(5):
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            decision = protocol.decode_as(Decision, message.payload)
            if decision.event_id == event_id:
                return decision
    raise AssertionError("no decision")  # pragma: no cover - the loop only ends by timeout


async def test_known_badge_opens_its_door_for_the_granted_time(rig: Rig) -> None:
    outcome = await rig.present(FRONT_DOOR, rig.space.ADA_BADGE)

    assert (outcome.granted, outcome.reason, outcome.answered) == (True, "granted", True)
    await asyncio.sleep(UNLOCK_SECONDS + 0.3)
    states = rig.relay_states(FRONT_RELAY)
    assert [state for _, state in states] == [False, True, False]
    held = states[2][0]
    assert UNLOCK_SECONDS <= held < UNLOCK_SECONDS + 0.25
    assert rig.relay_states(OFFICE_RELAY) == [(0.0, False)]
    await rig.gateway.writer.join()
    [event] = rig.access_events(outcome.event_id)
    assert (event.granted, event.reason, event.member_id) == (True, "granted", rig.space.ada)
    assert (event.door_id, event.device_id, event.site) == (FRONT_DOOR, DOOR_DEVICE, SITE)


@pytest.mark.parametrize(
    ("door", "badge", "reason"),
    [
        (FRONT_DOOR, Space.LINUS_BADGE, "member_suspended"),
        (OFFICE_DOOR, Space.GRACE_BADGE, "wrong_zone"),
        (FRONT_DOOR, Space.UNKNOWN_BADGE, "unknown_badge"),
        (FRONT_DOOR, Space.LOST_BADGE, "badge_revoked"),
    ],
)
async def test_denied_taps_name_their_reason_and_never_move_the_relay(
    rig: Rig, door: str, badge: str, reason: str
) -> None:
    outcome = await rig.present(door, badge)

    assert (outcome.granted, outcome.reason, outcome.answered) == (False, reason, True)
    await rig.gateway.writer.join()
    [event] = rig.access_events(outcome.event_id)
    assert (event.granted, event.reason) == (False, reason)
    for relay in (FRONT_RELAY, OFFICE_RELAY):
        assert rig.relay_states(relay) == [(0.0, False)]


async def test_the_same_tap_delivered_twice_is_recorded_once(rig: Rig) -> None:
    tap = tap_for(rig.space.ADA_BADGE, "redelivered-tap-0001")
    async with device_client(rig.broker) as device:
        for _ in range(2):
            await device.publish(
                protocol.topic(SITE, DOOR_DEVICE, Channel.TAP), protocol.encode(tap), qos=1
            )
            decision = await next_decision(device, tap.event_id)
            assert decision.granted
    await rig.gateway.writer.join()

    assert len(rig.access_events(tap.event_id)) == 1
    assert rig.gateway.ingest is not None
    assert rig.gateway.ingest.counters["redelivered_tap"] == 1


async def test_bad_messages_are_logged_counted_and_the_next_tap_is_answered(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    ingest = rig.gateway.ingest
    assert ingest is not None
    tap_topic = protocol.topic(SITE, DOOR_DEVICE, Channel.TAP)
    oversize = tap_for(rig.space.ADA_BADGE, "oversize-tap-0001").model_dump(mode="json")
    oversize["reader"] = "x" * 3000
    with caplog.at_level(logging.WARNING, logger="gateway.ingest"):
        async with device_client(rig.broker) as device:
            await device.publish(tap_topic, b"{not json", qos=1)
            await device.publish(f"varco/v1/{SITE}/{DOOR_DEVICE}/bogus", b"{}", qos=1)
            wrong_schema = {"v": 1, "event_id": "x", "door": FRONT_DOOR, "surprise": True}
            await device.publish(tap_topic, json.dumps(wrong_schema).encode(), qos=1)
            await device.publish(tap_topic, json.dumps(oversize).encode(), qos=1)
            await eventually(lambda: ingest.counters["rejected_too_large"] == 1)

            good = tap_for(rig.space.ADA_BADGE, "after-the-bad-ones-1")
            await device.publish(tap_topic, protocol.encode(good), qos=1)
            decision = await next_decision(device, good.event_id)

    assert decision.granted
    assert ingest.counters["rejected_invalid_payload"] == 2
    assert ingest.counters["rejected_unknown_channel"] == 1
    assert ingest.counters["rejected_too_large"] == 1
    reasons = [r.getMessage() for r in caplog.records if r.name == "gateway.ingest"]
    assert any("invalid_payload" in m and "not JSON" in m for m in reasons)
    assert any("invalid_payload" in m and "surprise: Extra inputs" in m for m in reasons)
    assert any("unknown_channel" in m and "'bogus'" in m for m in reasons)
    assert any("too_large" in m and "exceeds" in m for m in reasons)


async def test_taps_sent_while_the_gateway_is_down_are_recorded_when_it_returns(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    database = tmp_path / "varco.db"
    with Store(f"sqlite:///{database}") as store:
        space = make_space(store)
    settings = gateway_settings(database, mosquitto)
    async with Gateway(settings) as gateway:  # registers its persistent session
        assert gateway.ingest is not None
        await asyncio.wait_for(gateway.ingest.connected.wait(), timeout=5)

    taps = [tap_for(space.GRACE_BADGE, f"while-away-{n:04d}") for n in range(5)]
    async with device_client(mosquitto) as device:
        for tap in taps:
            await device.publish(
                protocol.topic(SITE, DOOR_DEVICE, Channel.TAP), protocol.encode(tap), qos=1
            )

    async with Gateway(settings) as gateway:
        store = gateway.store

        def recorded() -> int:
            with store.session() as session:
                return session.scalar(select(func.count()).select_from(AccessEvent)) or 0

        await eventually(lambda: recorded() == len(taps))


async def test_device_status_is_online_while_connected_and_offline_after(rig: Rig) -> None:
    def state() -> str | None:
        with rig.gateway.store.session() as session:
            device = session.get(Device, DOOR_DEVICE)
            return device.state if device else None

    await eventually(lambda: state() == "online")
    await rig.agent.link.publish(
        Channel.STATUS, rig.agent.link.status(protocol.DeviceState.OFFLINE), retain=True
    )
    await eventually(lambda: state() == "offline")
