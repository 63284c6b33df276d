"""What a device may tell the gateway: its own doors, desks and site, times the gateway can
believe, no retained events, no flood that delays the other doors; and no credential in a log.

Each refusal is counted (``rejected_<reason>``), logged and acknowledged: more refusals than the
broker's in-flight window are sent before each good tap, which would wait forever otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from gateway.service import Gateway
from gateway.store import Store
from gateway.store.models import Device, DeviceKind, Door
from tests.conftest import Mosquitto
from tests.factories import DOOR_DEVICE, FRONT_DOOR, SITE, add_desk_node, make_space
from tests.integration.conftest import (
    Rig,
    device_client,
    eventually,
    gateway_settings,
    next_decision,
    tap_for,
)
from varco import protocol
from varco.protocol import (
    Channel,
    Credential,
    Decision,
    DeskEvent,
    DeviceState,
    DoorEvent,
    DoorState,
    OfflineDecision,
    Payload,
    Reason,
    Status,
    Tap,
)

pytestmark = pytest.mark.integration

OTHER_DEVICE = "door-ctl-2"
OTHER_DOOR = "back-door"
OTHER_NODE = "desk-node-2"
WINDOW = 20  # mosquitto's default in-flight window; the tests' broker has a wider one
YEAR_1 = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))
YEAR_9999 = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-14)))


def register_others(rig: Rig) -> None:
    """Another door controller with its door, and two desk nodes with a desk each."""
    with rig.gateway.store.session() as session:
        session.add(Device(id=OTHER_DEVICE, site=SITE, kind=DeviceKind.DOOR_CONTROLLER))
        session.flush()
        session.add(Door(id=OTHER_DOOR, name="Back", zone_id="lobby", device_id=OTHER_DEVICE))
    add_desk_node(rig.gateway.store, {"desk-1": "lobby"})
    add_desk_node(rig.gateway.store, {"desk-2": "lobby"}, device=OTHER_NODE)
    rig.gateway.reload_policy()


def offline_tap(event_id: str, door: str = FRONT_DOOR, at: datetime | None = None) -> Tap:
    return Tap(
        event_id=event_id,
        door=door,
        credential=Credential(value="04A1B2C3D4"),
        at=at or protocol.utcnow(),
        offline=OfflineDecision(granted=True, reason=Reason.GRANTED),
    )


def door_event(event_id: str, door: str, at: datetime, state: DoorState) -> DoorEvent:
    return DoorEvent(event_id=event_id, door=door, state=state, at=at)


def desk_event(event_id: str, desk: str, at: datetime | None = None) -> DeskEvent:
    return DeskEvent(event_id=event_id, desk=desk, occupied=True, at=at or protocol.utcnow())


def status(at: datetime) -> Status:
    return Status(state=DeviceState.ONLINE, software="varco-edge test", started_at=at, at=at)


def refusals(rig: Rig) -> Counter[str]:
    assert rig.gateway.ingest is not None
    counters = rig.gateway.ingest.counters
    return Counter({k: v for k, v in counters.items() if k.startswith("rejected_")})


async def send_then_tap(rig: Rig, messages: list[tuple[str, str, Payload]], tag: str) -> bool:
    """Publish each (site, device, payload) ``WINDOW`` times over; return whether a good tap of
    the door controller is then granted."""
    channels = {Tap: Channel.TAP, DoorEvent: Channel.DOOR, DeskEvent: Channel.DESK}
    async with device_client(rig.broker) as device:
        for site, sender, payload in messages:
            channel = channels.get(type(payload), Channel.STATUS)
            for _ in range(max(1, WINDOW // len(messages) + 1)):
                await device.publish(
                    protocol.topic(site, sender, channel), protocol.encode(payload), qos=1
                )
        good = tap_for(rig.space.ADA_BADGE, f"good-tap-{tag}")
        await device.publish(
            protocol.topic(SITE, DOOR_DEVICE, Channel.TAP), protocol.encode(good), qos=1
        )
        return (await next_decision(device, good.event_id)).granted


async def test_a_device_speaks_only_for_its_own_doors_desks_and_site(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    register_others(rig)
    now = protocol.utcnow()
    rig.gateway.occupancy.apply_door(door_event("seed-0001", OTHER_DOOR, now, DoorState.CLOSED))
    messages: list[tuple[str, str, Payload]] = [
        # Controller 1 says that someone came in through controller 2's door, while offline.
        (SITE, DOOR_DEVICE, offline_tap("foreign-offline-1", door=OTHER_DOOR)),
        # ... and that controller 2's door was forced open.
        (SITE, DOOR_DEVICE, door_event("foreign-door-1", OTHER_DOOR, now, DoorState.FORCED_OPEN)),
        # A desk nobody registered, and another node's desk.
        (SITE, "desk-node-1", desk_event("made-up-desk-1", "desk-999")),
        (SITE, "desk-node-1", desk_event("foreign-desk-1", "desk-2")),
        # Its own door, under another site's segment; and a device nobody registered.
        ("elsewhere", DOOR_DEVICE, offline_tap("wrong-site-1")),
        (SITE, "door-ctl-99", offline_tap("stranger-1")),
    ]
    with caplog.at_level(logging.WARNING, logger="gateway.ingest"):
        granted = await send_then_tap(rig, messages, "own")
    await rig.gateway.writer.join()

    assert granted
    assert set(refusals(rig)) == {
        "rejected_not_its_door",
        "rejected_unknown_desk",
        "rejected_not_its_desk",
        "rejected_wrong_site",
        "rejected_unknown_device",
    }
    assert refusals(rig).total() >= WINDOW
    event_ids = {event.event_id for event in rig.access_events()}
    assert not event_ids & {"foreign-offline-1", "wrong-site-1", "stranger-1"}
    assert rig.gateway.occupancy.doors[OTHER_DOOR][0] == "closed"
    assert set(rig.gateway.occupancy.desks) <= {"desk-1", "desk-2"}
    assert "desk-999" not in rig.gateway.live.state_json
    assert "door 'back-door' is not this device's" in caplog.text
    assert "device 'door-ctl-1' is registered at site 'test-site'" in caplog.text


async def test_the_owner_of_a_door_or_desk_is_still_believed(rig: Rig) -> None:
    register_others(rig)
    messages: list[tuple[str, str, Payload]] = [
        (
            SITE,
            OTHER_DEVICE,
            door_event("own-door-1", OTHER_DOOR, protocol.utcnow(), DoorState.OPENED),
        ),
        (SITE, OTHER_NODE, desk_event("own-desk-1", "desk-2")),
        (SITE, DOOR_DEVICE, offline_tap("own-offline-1")),
    ]

    assert await send_then_tap(rig, messages, "owner")
    await rig.gateway.writer.join()

    assert refusals(rig) == Counter()
    assert rig.gateway.occupancy.doors[OTHER_DOOR][0] == "opened"
    assert rig.gateway.occupancy.desks["desk-2"].occupied
    assert [e.event_id for e in rig.access_events("own-offline-1")] == ["own-offline-1"]


async def test_times_the_gateway_cannot_believe_are_refused_and_the_doors_go_on(
    rig: Rig,
) -> None:
    register_others(rig)
    now = protocol.utcnow()
    ahead, old = now + timedelta(days=2), now - timedelta(days=40)
    messages: list[tuple[str, str, Payload]] = []
    for n, at in enumerate([YEAR_1, YEAR_9999, ahead, old]):
        messages += [
            (SITE, DOOR_DEVICE, offline_tap(f"time-tap-{n}", at=at)),
            (SITE, DOOR_DEVICE, door_event(f"time-door-{n}", FRONT_DOOR, at, DoorState.OPENED)),
            (SITE, "desk-node-1", desk_event(f"time-desk-{n}", "desk-1", at=at)),
        ]
    # A status may be old (a last will is stamped when its session began), not out of range.
    messages += [(SITE, OTHER_DEVICE, status(at)) for at in (YEAR_1, YEAR_9999, ahead)]

    assert await send_then_tap(rig, messages, "times")
    await rig.gateway.writer.join()

    assert set(refusals(rig)) == {
        "rejected_time_outside_calendar",
        "rejected_time_ahead",
        "rejected_time_too_old",
    }
    assert not {e.event_id for e in rig.access_events()} & {f"time-tap-{n}" for n in range(4)}
    assert FRONT_DOOR not in rig.gateway.occupancy.doors
    assert "desk-1" not in rig.gateway.occupancy.desks
    assert rig.gateway.writer.set_aside == 0  # refused before the store, not set aside there
    assert not rig.gateway.failed  # the live page, the writer, everything else still runs


async def test_a_tap_answered_online_with_a_clock_gone_wrong_is_recorded_at_the_gateways_time(
    rig: Rig,
) -> None:
    tap = Tap(
        event_id="wrong-clock-1",
        door=FRONT_DOOR,
        credential=Credential(value=rig.space.ADA_BADGE),
        at=YEAR_9999,
    )
    async with device_client(rig.broker) as device:
        await device.publish(
            protocol.topic(SITE, DOOR_DEVICE, Channel.TAP), protocol.encode(tap), qos=1
        )
        decision = await next_decision(device, tap.event_id)
    await rig.gateway.writer.join()

    assert decision.granted  # the member at the door is answered
    [event] = rig.access_events(tap.event_id)
    assert abs(event.tapped_at - protocol.utcnow()) < timedelta(minutes=1)
    assert rig.gateway.ingest is not None
    assert rig.gateway.ingest.counters["replaced_time_outside_calendar"] == 1


async def test_a_clock_ahead_cannot_pin_a_door_or_a_desk(rig: Rig) -> None:
    add_desk_node(rig.gateway.store, {"desk-1": "lobby"})
    rig.gateway.reload_policy()
    soon = protocol.utcnow() + timedelta(hours=23)  # ahead, within what a clock may be off
    async with device_client(rig.broker) as device:
        for channel, sender, payload in [
            (
                Channel.DOOR,
                DOOR_DEVICE,
                door_event("ahead-door-1", FRONT_DOOR, soon, DoorState.FORCED_OPEN),
            ),
            (Channel.DESK, "desk-node-1", desk_event("ahead-desk-1", "desk-1", at=soon)),
        ]:
            await device.publish(
                protocol.topic(SITE, sender, channel), protocol.encode(payload), qos=1
            )
        await eventually(lambda: "desk-1" in rig.gateway.occupancy.desks)
        await asyncio.sleep(0.01)
        later = [
            (
                Channel.DOOR,
                DOOR_DEVICE,
                door_event("now-door-1", FRONT_DOOR, protocol.utcnow(), DoorState.CLOSED),
            ),
            (
                Channel.DESK,
                "desk-node-1",
                DeskEvent(
                    event_id="now-desk-1", desk="desk-1", occupied=False, at=protocol.utcnow()
                ),
            ),
        ]
        for channel, sender, payload in later:
            await device.publish(
                protocol.topic(SITE, sender, channel), protocol.encode(payload), qos=1
            )
    # The events of now win over those ahead, once each has arrived.
    await eventually(lambda: rig.gateway.occupancy.doors[FRONT_DOOR][0] == "closed")
    await eventually(lambda: not rig.gateway.occupancy.desks["desk-1"].occupied)


async def test_a_retained_tap_is_not_decided_again_after_a_restart(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    database = tmp_path / "varco.db"
    with Store(f"sqlite:///{database}") as store:
        space = make_space(store)
    settings = gateway_settings(database, mosquitto)
    tap = tap_for(space.ADA_BADGE, "retained-tap-0001")
    async with Gateway(settings) as gateway, device_client(mosquitto) as device:
        assert gateway.ingest is not None
        await asyncio.wait_for(gateway.ingest.connected.wait(), timeout=5)
        await device.publish(
            protocol.topic(SITE, DOOR_DEVICE, Channel.TAP), protocol.encode(tap), qos=1, retain=True
        )
        assert (await next_decision(device, tap.event_id)).granted  # live: decided once
        await gateway.writer.join()  # committed and acknowledged: not redelivered

    async with Gateway(settings) as restarted:  # subscribes again: the broker sends it, retained
        ingest = restarted.ingest
        assert ingest is not None
        await eventually(lambda: ingest.counters["rejected_retained"] == 1)
        counters = dict(ingest.counters)

    assert counters.get("granted", 0) == 0
    assert counters.get("redelivered_tap", 0) == 0


async def test_no_badge_uid_or_pass_code_reaches_the_log(
    rig: Rig, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_others(rig)
    ingest = rig.gateway.ingest
    assert ingest is not None
    secret_uid, secret_code = "04C0FFEE99", "Pass-Code-7731"

    def broken(*_: object) -> None:
        raise RuntimeError("a bug in the tap handler")

    with caplog.at_level(logging.DEBUG):
        async with device_client(rig.broker) as device:
            tap_topic = protocol.topic(SITE, DOOR_DEVICE, Channel.TAP)
            # Refused: another device's door, offline, with the member's badge.
            refused = Tap(
                event_id="logged-refusal-1",
                door=OTHER_DOOR,
                credential=Credential(value=secret_uid),
                at=protocol.utcnow(),
                offline=OfflineDecision(granted=True, reason=Reason.GRANTED),
            )
            await device.publish(tap_topic, protocol.encode(refused), qos=1)
            # Invalid: a pass code where the schema wants something else.
            await device.publish(
                tap_topic,
                b'{"v":1,"credential":{"kind":"pass","value":"'
                + secret_code.encode()
                + b'"},"door":"x"}',
                qos=1,
            )
            await eventually(lambda: ingest.counters["rejected_invalid_payload"] == 1)
            # A fault of ours while handling a tap carrying a badge UID.
            monkeypatch.setitem(ingest._handlers, Channel.TAP, broken)
            await device.publish(
                tap_topic, protocol.encode(tap_for(secret_uid, "fault-tap-1")), qos=1
            )
            await eventually(lambda: ingest.counters["handler_errors"] == 1)

    assert "a bug in the tap handler" in caplog.text
    assert "fault-tap-1" in caplog.text  # which message, by its id
    assert secret_uid not in caplog.text
    assert secret_code not in caplog.text


async def test_a_flood_from_one_device_does_not_keep_the_other_doors_waiting(rig: Rig) -> None:
    register_others(rig)
    ingest = rig.gateway.ingest
    assert ingest is not None
    flood = 10_000
    payloads = [
        protocol.encode(tap_for(rig.space.GRACE_BADGE, f"flood-{n:08d}", door=OTHER_DOOR))
        for n in range(flood)
    ]
    started = threading.Event()

    def publish_flood() -> None:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=OTHER_DEVICE,
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        client.max_inflight_messages_set(1000)  # as fast as it can, not waiting for PUBACKs
        client.max_queued_messages_set(0)
        client.connect("127.0.0.1", rig.broker.port)
        client.loop_start()
        started.set()
        sent = [
            client.publish(protocol.topic(SITE, OTHER_DEVICE, Channel.TAP), p, qos=1)
            for p in payloads
        ]
        for info in sent:
            info.wait_for_publish(60)
        client.disconnect()
        client.loop_stop()

    flooding = asyncio.create_task(asyncio.to_thread(publish_flood))
    await asyncio.to_thread(started.wait, 10)
    decisions: list[Decision] = []
    async with device_client(rig.broker) as door:  # the front door, while the flood runs
        while not flooding.done():
            tap = tap_for(rig.space.ADA_BADGE, f"during-flood-{len(decisions):04d}")
            await door.publish(
                protocol.topic(SITE, DOOR_DEVICE, Channel.TAP), protocol.encode(tap), qos=1
            )
            decisions.append(await next_decision(door, tap.event_id))
            await asyncio.sleep(0.05)  # a door is not tapped faster
    await flooding
    # Once the flood is sent, the gateway has caught up within a door's timeout.
    after = await rig.present(FRONT_DOOR, rig.space.ADA_BADGE)

    # Every tap of the other door decided by the gateway, none refused or lost to the flood
    # (how soon, during the flood, is measured by bench/flood.py).
    assert decisions
    assert all(d.granted for d in decisions)
    assert (after.granted, after.answered) == (True, True)
    await eventually(lambda: ingest.counters["received"] >= flood, within=30)
    assert ingest.counters["rejected_tap_rate"] > flood // 2


async def test_a_last_will_counts_from_when_the_broker_sent_it(rig: Rig) -> None:
    # The will is built before the device connects: it carries the session's start, and a Pi
    # that ran for hours and then died must not read as gone since the morning.
    register_others(rig)
    began = protocol.utcnow() - timedelta(hours=5)
    will = Status(state=DeviceState.OFFLINE, software="test", started_at=began, at=began)
    async with device_client(rig.broker) as device:
        await device.publish(
            protocol.topic(SITE, OTHER_DEVICE, Channel.STATUS), protocol.encode(will), qos=1
        )
    received = protocol.utcnow()

    def recorded() -> Device | None:
        with rig.gateway.store.session() as session:
            device = session.get(Device, OTHER_DEVICE)
            return device if device is not None and device.state == "offline" else None

    await eventually(lambda: recorded() is not None)
    gone = recorded()
    assert gone is not None
    assert gone.last_status_at is not None
    assert gone.last_status_at >= received - timedelta(minutes=1)
