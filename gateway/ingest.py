"""The MQTT ingest loop: every device message is parsed once and dispatched by channel.

Messages are acknowledged (manual PUBACK) only once what they carry is committed to SQL, so
a gateway that dies mid-way gets them again from the broker; handlers are idempotent by event
id, so a redelivery is recorded once.

A device speaks only for itself: a message is refused (logged at a bounded rate, counted as
``rejected_<reason>``, acknowledged) when its device is not registered, when it names another
site than the device's, a door or desk that is not the device's, a time the gateway cannot
believe (``gateway.admission``), when it is a retained event, or when the device already has
too many messages waiting for their commit or taps faster than any reader (fairness: one
device's flood must not hold the broker's in-flight window that every door's answer needs).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import aiomqtt
import msgspec
import paho.mqtt.client as mqtt

from gateway.access import Policy, decide
from gateway.admission import (
    MAX_PENDING_PER_DEVICE,
    TAP_RATE_PER_SECOND,
    RefusalLog,
    TokenBucket,
    no_later_than,
    time_refusal,
)
from gateway.occupancy import Occupancy
from gateway.store.records import logged_credential
from gateway.store.writer import EventWriter, Record
from varco import protocol, transport
from varco.protocol import (
    Channel,
    Decision,
    DeskEvent,
    DoorEvent,
    Payload,
    PayloadError,
    PayloadTooLargeError,
    Status,
    Tap,
    Topic,
    TopicError,
)

log = logging.getLogger(__name__)

# Decisions remembered so that a redelivered tap gets the same answer it got the first time.
RECENT_DECISIONS = 4096

Ack = Callable[[bool], None]
Observer = Callable[[Topic, Payload], None]


@dataclass(frozen=True, slots=True)
class IngestOptions:
    client_id: str = "gateway-1"
    share_group: str | None = "varco-gateways"
    reconnect_max_seconds: float = 10.0
    tap_rate: float = TAP_RATE_PER_SECOND  # online taps a second per device


class Ingest:
    """Receives device messages, decides taps, publishes decisions, queues records."""

    def __init__(
        self,
        broker: transport.BrokerAddress,
        writer: EventWriter,
        policy: Callable[[], Policy],
        occupancy: Occupancy,
        options: IngestOptions | None = None,
    ) -> None:
        self._broker = broker
        self._writer = writer
        self._policy = policy
        self._occupancy = occupancy
        self._options = options or IngestOptions()
        self._client: aiomqtt.Client | None = None
        self._generation = 0
        self._recent: OrderedDict[str, Decision] = OrderedDict()
        self.connected = asyncio.Event()
        self.counters: Counter[str] = Counter()
        self.observers: list[Observer] = []
        self.on_connect: list[Callable[[], None]] = []
        # Called with each access-log row as it is queued (who, where, granted): the live page.
        self.access_observers: list[Callable[[dict[str, Any]], None]] = []
        self.inside: dict[int, str] = {}
        self._inside_at: dict[int, datetime] = {}
        # Per device: messages handled and not yet acknowledged; online taps it may still send.
        self._pending: Counter[str] = Counter()
        self._taps = TokenBucket(self._options.tap_rate)
        self._refusals = RefusalLog(log)
        # Built once; each message is then a lookup (unknown channels never reach here).
        self._handlers: dict[Channel, Callable[[Topic, Any, Ack], None]] = {
            Channel.TAP: self._on_tap,
            Channel.DOOR: self._on_door,
            Channel.DESK: self._on_desk,
            Channel.STATUS: self._on_status,
        }

    async def run(self) -> None:
        """Stay connected to the broker and handle messages until cancelled."""
        backoff = 0.2
        while True:
            client = transport.client(
                self._broker, identifier=self._options.client_id, clean_session=False
            )
            # aiomqtt acknowledges on receipt; we acknowledge after the commit instead.
            client._client.manual_ack_set(True)
            try:
                async with transport.connection(client):
                    self._generation += 1
                    self._client = client
                    # What devices send, nothing else: not our own decisions and allow-lists.
                    for filter_ in protocol.gateway_subscriptions():
                        if self._options.share_group:
                            filter_ = protocol.shared(self._options.share_group, filter_)
                        await client.subscribe(filter_, qos=1)
                    log.info("ingest connected to %s:%d", self._broker.host, self._broker.port)
                    self.connected.set()
                    for callback in self.on_connect:
                        callback()
                    backoff = 0.2
                    async for message in client.messages:
                        self.handle(
                            message.topic.value,
                            _as_bytes(message.payload),
                            self._acker(message.mid, message.qos),
                            retained=message.retain,
                        )
            except aiomqtt.MqttError as exc:
                log.warning("broker connection lost (%s); retrying in %.1fs", exc, backoff)
            finally:
                self.connected.clear()
                self._client = None
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._options.reconnect_max_seconds)

    def handle(self, topic_name: str, raw: bytes, ack: Ack, *, retained: bool = False) -> None:
        """Check, parse and dispatch one message; what is refused is logged, counted and acked."""
        self.counters["received"] += 1
        try:
            topic = protocol.parse(topic_name)
        except TopicError as exc:
            return self._reject("?", topic_name[:200], "bad_topic", exc, ack)
        # Cheap checks first, before the payload is even decoded: a flood costs little.
        device = self._policy().devices.get(topic.device)
        if device is None:
            return self._refuse(topic, "unknown_device", "no such device is registered", ack)
        if device.site != topic.site:
            why = f"device {topic.device!r} is registered at site {device.site!r}"
            return self._refuse(topic, "wrong_site", why, ack)
        if retained and topic.channel is not Channel.STATUS:
            # Stored by the broker, it would be handled again after every restart.
            return self._refuse(topic, "retained", "events must not be retained", ack)
        if self._pending[topic.device] >= MAX_PENDING_PER_DEVICE:
            why = f"{MAX_PENDING_PER_DEVICE} of its messages are still being committed"
            return self._refuse(topic, "over_budget", why, ack)
        try:
            payload = protocol.decode(topic.channel, raw)
        except PayloadTooLargeError as exc:
            return self._refuse(topic, "too_large", exc, ack)
        except PayloadError as exc:
            return self._refuse(topic, "invalid_payload", exc, ack)
        refusal = time_refusal(payload, protocol.utcnow())
        if refusal is not None:
            if not isinstance(payload, Tap) or payload.offline is not None:
                return self._refuse(topic, refusal, "a time the gateway cannot believe", ack)
            # A member is at the door: answer, and record the tap at the gateway's time.
            self.counters[f"replaced_{refusal}"] += 1
            self._refusals.refused(topic.device, refusal, str(topic), "tap time replaced")
            payload = msgspec.structs.replace(payload, at=protocol.utcnow())
        trespass = self._trespass(topic, payload)
        if trespass is not None:
            return self._refuse(topic, *trespass, ack)
        self.counters[f"accepted_{topic.channel.value}"] += 1
        tracked = self._tracked(topic.device, ack)
        try:
            self._handlers[topic.channel](topic, payload, tracked)
        except Exception:
            # A fault of ours, not of the message: say so loudly, and go on with the next one
            # rather than stop taking any. The payload is not logged: it may carry a badge UID.
            self.counters["handler_errors"] += 1
            log.exception(
                "could not handle %s on %r (event %s)",
                topic.channel.value,
                topic_name,
                getattr(payload, "event_id", None),
            )
            tracked(False)
        return None

    def _trespass(self, topic: Topic, payload: Payload) -> tuple[str, str] | None:
        """Return why a device may not say this (reason, detail), or ``None`` if it may."""
        policy = self._policy()
        if isinstance(payload, Tap | DoorEvent):
            door = policy.doors.get(payload.door)
            if isinstance(payload, Tap) and payload.offline is None:
                # Online, another device's door is answered unknown_door by decide().
                if not self._taps.take(topic.device):
                    # Faster than any reader is tapped: unanswered, the door decides offline.
                    return "tap_rate", "more taps than its doors' readers can read"
            elif door is None or door.device != topic.device:
                # Recorded, it would be an entry at another device's door, or change its state.
                return "not_its_door", f"door {payload.door!r} is not this device's"
        elif isinstance(payload, DeskEvent):
            if payload.desk not in policy.desk_areas:
                # Made-up desks would grow the live page without end.
                return "unknown_desk", f"no desk {payload.desk!r} is registered"
            owner = policy.desk_devices.get(payload.desk)
            if owner is not None and owner != topic.device:
                return "not_its_desk", f"desk {payload.desk!r} is {owner!r}'s"
        return None

    def _refuse(self, topic: Topic, why: str, detail: object, ack: Ack) -> None:
        self._reject(topic.device, str(topic), why, detail, ack)

    def _reject(self, device: str, where: str, why: str, detail: object, ack: Ack) -> None:
        self.counters[f"rejected_{why}"] += 1
        self._refusals.refused(device, why, repr(where), detail)
        # Acknowledged on purpose: redelivering a bad message would only fail again.
        ack(False)

    def _tracked(self, device: str, ack: Ack) -> Ack:
        """Count ``device``'s message as pending until ``ack`` is called (once)."""
        self._pending[device] += 1
        done = False

        def settled(is_new: bool) -> None:
            nonlocal done
            if not done:
                done = True
                self._pending[device] -= 1
                if self._pending[device] <= 0:
                    del self._pending[device]
            ack(is_new)

        return settled

    async def publish(self, topic_name: str, data: bytes, *, retain: bool = False) -> None:
        """Publish at QoS 1 on the ingest connection; raise ``aiomqtt.MqttError`` if down."""
        client = self._client
        if client is None:
            raise aiomqtt.MqttError("not connected to the broker")
        await client.publish(topic_name, data, qos=1, retain=retain)

    def _on_tap(self, topic: Topic, tap: Tap, ack: Ack) -> None:
        if tap.offline is not None:
            self._on_offline_tap(topic, tap, ack)
            return
        decision = self._recent.get(tap.event_id)
        if decision is None:
            policy = self._policy()
            now = protocol.utcnow()
            verdict = decide(
                policy,
                device=topic.device,
                door=tap.door,
                credential=tap.credential,
                at=now,
                inside=self.inside,
            )
            decision = Decision(
                event_id=tap.event_id,
                door=tap.door,
                granted=verdict.granted,
                reason=verdict.reason,
                unlock_seconds=verdict.unlock_seconds,
                display_name=verdict.display_name,
                decided_at=now,
            )
            self._remember(decision)
            if verdict.granted and verdict.member_id is not None:
                self.passed(tap.door, verdict.member_id, now)
            self.counters["granted" if decision.granted else "denied"] += 1
            row = {
                "event_id": tap.event_id,
                "site": topic.site,
                "device_id": topic.device,
                "door_id": tap.door,
                "credential_kind": tap.credential.kind.value,
                "credential": logged_credential(policy, tap.credential),
                "member_id": verdict.member_id,
                "granted": decision.granted,
                "reason": decision.reason.value,
                "decided_offline": False,
                "allowlist_version": None,
                "tapped_at": tap.at,
                "decided_at": decision.decided_at,
            }
        else:
            self.counters["redelivered_tap"] += 1
            row = None
        # Answer first: the decision path waits for no disk.
        self._publish(protocol.topic(topic.site, topic.device, Channel.DECISION), decision)
        self._notify(topic, decision)
        if row is None:
            ack(False)
        else:
            self._observe_access(row)
            self._writer.submit(Record("access", row, ack))

    def passed(self, door_id: str, member_id: int, at: datetime) -> None:
        """Note that ``member_id`` went through ``door_id`` at ``at`` (a granted tap).

        Anti-passback: remember who is inside which zone. Kept in this replica's memory and
        seeded from the access log at start; with several replicas each sees only the taps it
        handled after that (see the README). A tap older than what is known changes nothing:
        taps a door decided offline arrive late.
        """
        policy = self._policy()
        door = policy.doors.get(door_id)
        zone = policy.zones.get(door.zone) if door is not None else None
        if door is None or zone is None or not zone.anti_passback:
            return
        known = self._inside_at.get(member_id)
        if known is not None and at < known:
            return
        self._inside_at[member_id] = at
        if door.direction == "in":
            self.inside[member_id] = zone.id
        elif self.inside.get(member_id) == zone.id:
            del self.inside[member_id]

    def _on_offline_tap(self, topic: Topic, tap: Tap, ack: Ack) -> None:
        # The door already acted; record what it did, and who it was, without deciding again.
        offline = tap.offline
        assert offline is not None
        badge = self._policy().badges.get(tap.credential.value)
        self.counters["offline_tap"] += 1
        self._notify(topic, tap)
        row = {
            "event_id": tap.event_id,
            "site": topic.site,
            "device_id": topic.device,
            "door_id": tap.door,
            "credential_kind": tap.credential.kind.value,
            "credential": logged_credential(self._policy(), tap.credential),
            "member_id": badge.member_id if badge else None,
            "granted": offline.granted,
            "reason": offline.reason.value,
            "decided_offline": True,
            "allowlist_version": offline.allowlist_version,
            "tapped_at": tap.at,
            "decided_at": tap.at,
        }
        if offline.granted and badge is not None:  # the door let them through
            self.passed(tap.door, badge.member_id, no_later_than(tap.at, protocol.utcnow()))
        self._observe_access(row)
        self._writer.submit(Record("access", row, ack))

    def _on_door(self, topic: Topic, event: DoorEvent, ack: Ack) -> None:
        # Ordered by the device's time, but never after now: a clock ahead must not pin a state.
        self._occupancy.apply_door(_until_now(event))
        self._notify(topic, event)
        row = {
            "event_id": event.event_id,
            "site": topic.site,
            "device_id": topic.device,
            "door_id": event.door,
            "state": event.state.value,
            "at": event.at,
        }
        self._writer.submit(Record("door", row, ack))

    def _on_desk(self, topic: Topic, event: DeskEvent, ack: Ack) -> None:
        self._occupancy.apply_desk(_until_now(event))
        self._notify(topic, event)
        row = {
            "event_id": event.event_id,
            "site": topic.site,
            "device_id": topic.device,
            "desk_id": event.desk,
            "occupied": event.occupied,
            "at": event.at,
        }
        self._writer.submit(Record("desk", row, ack))

    def _on_status(self, topic: Topic, status: Status, ack: Ack) -> None:
        self._notify(topic, status)
        row = {
            "device_id": topic.device,
            "status": {
                "state": status.state.value,
                "software": status.software,
                "at": status.at,
                "allowlist_version": status.allowlist_version,
                "outbox_depth": status.outbox_depth,
            },
        }
        self._writer.submit(Record("status", row, ack))

    def _observe_access(self, row: dict[str, Any]) -> None:
        for observer in self.access_observers:
            try:
                observer(row)
            except Exception:
                log.exception("access observer %r failed on %s", observer, row["event_id"])

    def _remember(self, decision: Decision) -> None:
        self._recent[decision.event_id] = decision
        if len(self._recent) > RECENT_DECISIONS:
            self._recent.popitem(last=False)

    def _notify(self, topic: Topic, payload: Payload) -> None:
        for observer in self.observers:
            try:
                observer(topic, payload)
            except Exception:
                log.exception("observer %r failed on %s", observer, topic)

    def _publish(self, topic_name: str, payload: Decision) -> None:
        client = self._client
        if client is None:
            log.warning("not connected: decision for %s not sent", payload.event_id)
            return
        # Straight through paho, on this thread, and onto the socket now: the answer does not
        # wait for another turn of the loop, and nothing here needs its PUBACK (a door that
        # does not get it decides from its allow-list; the tap is still recorded).
        paho = client._client
        info = paho.publish(topic_name, protocol.encode(payload), qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.counters["decision_not_sent"] += 1
            log.warning("decision on %s not sent: %s", topic_name, mqtt.error_string(info.rc))
            return
        paho.loop_write()

    def _acker(self, mid: int, qos: int) -> Ack:
        generation = self._generation

        def ack(_is_new: bool) -> None:
            client = self._client
            # A PUBACK belongs to the connection that received the message; after a
            # reconnect the broker redelivers it, and the handlers are idempotent.
            if qos == 0 or client is None or generation != self._generation:
                return
            client._client.ack(mid, qos)

        return ack


E = TypeVar("E", DoorEvent, DeskEvent)


def _until_now(event: E) -> E:
    now = protocol.utcnow()
    return event if event.at <= now else msgspec.structs.replace(event, at=now)


def _as_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if payload is None:
        return b""
    return str(payload).encode()
