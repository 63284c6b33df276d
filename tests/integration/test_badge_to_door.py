"""The badge-to-door loop end to end: real mosquitto, the gateway, an edge agent on MockFactory."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import func, select

from gateway.service import Gateway
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
    add_desk_node,
    make_space,
)
from tests.integration.conftest import (
    FRONT_RELAY,
    OFFICE_RELAY,
    Rig,
    device_client,
    eventually,
    gateway_settings,
    next_decision,
    tap_for,
)
from varco import protocol
from varco.protocol import Channel, DeskEvent

pytestmark = pytest.mark.integration


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


async def test_a_fault_in_a_handler_is_logged_and_the_next_tap_is_answered(
    rig: Rig, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest = rig.gateway.ingest
    assert ingest is not None

    def broken(*_: object) -> None:
        raise RuntimeError("a bug in the desk handler")

    monkeypatch.setitem(ingest._handlers, Channel.DESK, broken)
    add_desk_node(rig.gateway.store, {"desk-1": "lobby"}, device=DOOR_DEVICE)
    rig.gateway.reload_policy()
    desk = DeskEvent(event_id="desk-evt-broken", desk="desk-1", occupied=True, at=protocol.utcnow())
    with caplog.at_level(logging.ERROR, logger="gateway.ingest"):
        async with device_client(rig.broker) as device:
            desk_topic = protocol.topic(SITE, DOOR_DEVICE, Channel.DESK)
            await device.publish(desk_topic, protocol.encode(desk), qos=1)
            good = tap_for(rig.space.ADA_BADGE, "after-the-fault-01")
            await device.publish(
                protocol.topic(SITE, DOOR_DEVICE, Channel.TAP), protocol.encode(good), qos=1
            )
            decision = await next_decision(device, good.event_id)

    assert decision.granted
    assert ingest.counters["handler_errors"] == 1
    assert "a bug in the desk handler" in caplog.text
    assert "desk-evt-broken" in caplog.text  # the message itself is in the log
    assert not rig.gateway.failed


async def test_a_fault_at_the_door_is_logged_and_the_door_keeps_answering(
    rig: Rig, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = rig.agent.link

    def broken(_raw: bytes) -> None:
        raise RuntimeError("a bug in the command handler")

    monkeypatch.setattr(link, "_on_command", broken)
    with caplog.at_level(logging.ERROR, logger="edge_agent.link"):
        async with device_client(rig.broker) as operator:
            command = protocol.topic(SITE, DOOR_DEVICE, Channel.COMMAND)
            await operator.publish(command, b"{}", qos=1)
            await eventually(lambda: "a bug in the command handler" in caplog.text)
        outcome = await rig.present(FRONT_DOOR, rig.space.ADA_BADGE)

    assert outcome.granted
    assert outcome.answered  # online: the link is still up
    assert not rig.agent_task.done()


async def test_bad_messages_are_logged_counted_and_the_next_tap_is_answered(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    ingest = rig.gateway.ingest
    assert ingest is not None
    tap_topic = protocol.topic(SITE, DOOR_DEVICE, Channel.TAP)
    oversize = msgspec.to_builtins(tap_for(rig.space.ADA_BADGE, "oversize-tap-0001"))
    oversize["reader"] = "x" * 3000
    with caplog.at_level(logging.WARNING, logger="gateway.ingest"):
        async with device_client(rig.broker) as device:
            await device.publish(tap_topic, b"{not json", qos=1)
            wrong_schema = {"v": 1, "event_id": "wrong-schema", "door": FRONT_DOOR, "surprise": 1}
            await device.publish(tap_topic, json.dumps(wrong_schema).encode(), qos=1)
            await device.publish(tap_topic, json.dumps(oversize).encode(), qos=1)
            await eventually(lambda: ingest.counters["rejected_too_large"] == 1)

            good = tap_for(rig.space.ADA_BADGE, "after-the-bad-ones-1")
            await device.publish(tap_topic, protocol.encode(good), qos=1)
            decision = await next_decision(device, good.event_id)

    assert decision.granted
    assert ingest.counters["rejected_invalid_payload"] == 2
    assert ingest.counters["rejected_too_large"] == 1
    reasons = [r.getMessage() for r in caplog.records if r.name == "gateway.ingest"]
    assert any("invalid_payload" in m and "not JSON" in m for m in reasons)
    assert any("invalid_payload" in m and "surprise: unknown field" in m for m in reasons)
    assert any("too_large" in m and "exceeds" in m for m in reasons)


async def test_the_gateway_hears_only_what_devices_send(rig: Rig) -> None:
    ingest = rig.gateway.ingest
    assert ingest is not None
    await eventually(lambda: ingest.counters["accepted_status"] >= 1)  # the door's own
    before = ingest.counters["received"]
    tap = tap_for(rig.space.ADA_BADGE, "heard-once-0001")
    async with device_client(rig.broker) as device:
        # Not part of the contract, and a channel the gateway itself publishes on.
        await device.publish(f"varco/v1/{SITE}/{DOOR_DEVICE}/bogus", b"{}", qos=1)
        await device.publish(protocol.topic(SITE, DOOR_DEVICE, Channel.COMMAND), b"{}", qos=1)
        await device.publish(
            protocol.topic(SITE, DOOR_DEVICE, Channel.TAP), protocol.encode(tap), qos=1
        )
        assert (await next_decision(device, tap.event_id)).granted
    await rig.gateway.writer.join()
    await asyncio.sleep(0.2)  # an echo of the decision would have arrived by now

    # The tap, and neither the gateway's own decision nor what is not a device's to send.
    assert ingest.counters["received"] - before == 1
    assert not {k for k in ingest.counters if "echo" in k or "channel" in k}


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
    rig.agent_task.cancel()  # a clean stop: the agent says offline itself
    await eventually(lambda: state() == "offline")


async def test_replicas_in_a_share_group_answer_taps(mosquitto: Mosquitto, tmp_path: Path) -> None:
    database = tmp_path / "varco.db"
    with Store(f"sqlite:///{database}") as store:
        space = make_space(store)
    settings = gateway_settings(database, mosquitto)
    replicas = [
        settings.model_copy(update={"gateway_id": f"gateway-{n}", "share_group": "gateways"})
        for n in (1, 2)
    ]
    async with Gateway(replicas[0]) as first, Gateway(replicas[1]) as second:
        for gateway in (first, second):
            assert gateway.ingest is not None
            await asyncio.wait_for(gateway.ingest.connected.wait(), timeout=5)
        taps = [tap_for(space.ADA_BADGE, f"shared-tap-{n:04d}") for n in range(6)]
        async with device_client(mosquitto) as device:
            for tap in taps:
                await device.publish(
                    protocol.topic(SITE, DOOR_DEVICE, Channel.TAP), protocol.encode(tap), qos=1
                )
                assert (await next_decision(device, tap.event_id)).granted
        await first.writer.join()
        await second.writer.join()
        answered = [g.ingest.counters["granted"] for g in (first, second) if g.ingest]

    assert sum(answered) == len(taps)  # each tap decided once, by one replica
    with Store(f"sqlite:///{database}") as store, store.session() as session:
        assert session.scalar(select(func.count()).select_from(AccessEvent)) == len(taps)
