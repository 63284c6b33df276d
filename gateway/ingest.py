"""Every device message is checked, parsed once and dispatched by channel.

Messages arrive on the broker connection's network thread (``gateway.connection``), and the
checks and the decision run there, as each message is read: a tap is answered before the next
message is read, and a flood costs a lookup per message. What the message changes in the rest
of the gateway (the writer's queue, the live page, the recorder, occupancy) is handed to the
event loop, in the order the messages came.

Messages are acknowledged (manual PUBACK) only once what they carry is committed to SQL, so
a gateway that dies mid-way gets them again from the broker; handlers are idempotent by event
id, so a redelivery is recorded once.

A device speaks only for itself: a message is refused (logged at a bounded rate, counted as
``rejected_<reason>``, acknowledged) when its device is not registered, when it names another
site than the device's, a door or desk that is not the device's, a time the gateway cannot
believe (``gateway.admission``), when it is a retained event, or when the device already has
too many messages waiting for their commit or taps faster than any reader (fairness: one
device's flood must not hold the broker's in-flight window that every door's answer needs).

Threads: the network thread owns the decision state (recent decisions, who is inside, the tap
budgets); ``passed`` is called there, and before the connection starts. Each counter is
written by one thread only.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import msgspec

from gateway.access import Policy, decide
from gateway.admission import (
    MAX_PENDING_PER_DEVICE,
    TAP_RATE_PER_SECOND,
    RefusalLog,
    TokenBucket,
    no_later_than,
    time_refusal,
)
from gateway.connection import Ack, BrokerConnection
from gateway.occupancy import Occupancy
from gateway.receipts import Receipts
from gateway.store.records import logged_credential
from gateway.store.writer import EventWriter, Record
from varco import protocol, transport
from varco.protocol import (
    Channel,
    Decision,
    DeskEvent,
    DeviceState,
    DoorEvent,
    Payload,
    PayloadError,
    PayloadTooLargeError,
    Status,
    Tap,
    Topic,
    TopicError,
)
from varco.protocol.payloads import EventId

log = logging.getLogger(__name__)

_OFFLINE = b'"offline"'

# Decisions remembered so that a redelivered tap gets the same answer it got the first time.
RECENT_DECISIONS = 4096

Observer = Callable[[Topic, Payload], None]


@dataclass(frozen=True, slots=True)
class IngestOptions:
    client_id: str = "gateway-1"
    share_group: str | None = "varco-gateways"
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
        self._writer = writer
        self._policy = policy
        self._occupancy = occupancy
        self._options = options or IngestOptions()
        subscriptions = [
            protocol.shared(self._options.share_group, filter_)
            if self._options.share_group
            else filter_
            for filter_ in protocol.gateway_subscriptions()
        ]
        self._connection = BrokerConnection(
            broker,
            client_id=self._options.client_id,
            subscriptions=subscriptions,
            on_message=self.handle,
        )
        self._recent: OrderedDict[str, Decision] = OrderedDict()
        self.counters: Counter[str] = Counter()
        self.observers: list[Observer] = []
        # Called with each access-log row as it is queued (who, where, granted): the live page.
        self.access_observers: list[Callable[[dict[str, Any]], None]] = []
        self.inside: dict[int, str] = {}
        self._inside_at: dict[int, datetime] = {}
        # Per device: messages handled and not yet acknowledged (settled on the event loop,
        # counted on the network thread: hence the lock); online taps it may still send.
        self._pending: Counter[str] = Counter()
        self._pending_lock = threading.Lock()
        self._taps = TokenBucket(self._options.tap_rate)
        self._refusals = RefusalLog(log)
        self._receipts = Receipts(self._connection.answer)
        # Built once; each message is then a lookup (unknown channels never reach here).
        self._handlers: dict[Channel, Callable[[Topic, Any, Ack], None]] = {
            Channel.TAP: self._on_tap,
            Channel.DOOR: self._on_door,
            Channel.DESK: self._on_desk,
            Channel.STATUS: self._on_status,
        }

    @property
    def connected(self) -> asyncio.Event:
        """Set while the session is up and subscribed."""
        return self._connection.connected

    @property
    def on_connect(self) -> list[Callable[[], None]]:
        """Called on the event loop each time the session is up and subscribed again."""
        return self._connection.on_connect

    async def run(self) -> None:
        """Stay connected to the broker and handle messages until cancelled."""
        await self._connection.run()

    async def publish(self, topic_name: str, data: bytes, *, retain: bool = False) -> None:
        """Publish at QoS 1; raise ``transport.BrokerUnavailableError`` if it cannot go."""
        await self._connection.publish(topic_name, data, retain=retain)

    def handle(self, topic_name: str, raw: bytes, ack: Ack, retained: bool = False) -> None:
        """Check, parse and dispatch one message; what is refused is logged, counted and acked.

        On the network thread (or before the connection starts).
        """
        self.counters["received"] += 1
        try:
            topic = protocol.parse(topic_name)
        except TopicError as exc:
            return self._reject("?", _Quoted(topic_name[:200]), "bad_topic", exc, ack)
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
        # A flood is refused before it is decoded: a tap that does not even spell "offline"
        # is an online tap, and counts against its device's rate (the others are checked once
        # decoded, below). Half of what a refused tap costs is the decoding.
        rate_checked = topic.channel is Channel.TAP and _OFFLINE not in raw
        if rate_checked and not self._taps.take(topic.device):
            return self._refuse_tap_rate(topic, ack)
        try:
            payload = protocol.decode(topic.channel, raw)
        except PayloadTooLargeError as exc:
            return self._refuse(topic, "too_large", exc, ack)
        except PayloadError as exc:
            self._refuse(topic, "invalid_payload", exc, ack)
            # Sent again, it would fail again: the edge may forget it, if it can be named.
            return self._refused_for_good(topic, _event_id_in(raw))
        refusal = time_refusal(payload, protocol.utcnow())
        if refusal is not None:
            if not isinstance(payload, Tap) or payload.offline is not None:
                self._refuse(topic, refusal, "a time the gateway cannot believe", ack)
                return self._refused_for_good(topic, getattr(payload, "event_id", None))
            # A member is at the door: answer, and record the tap at the gateway's time.
            self.counters[f"replaced_{refusal}"] += 1
            self._refusals.refused(topic.device, refusal, str(topic), "tap time replaced")
            payload = msgspec.structs.replace(payload, at=protocol.utcnow())
        if isinstance(payload, Status) and payload.state is DeviceState.OFFLINE and not retained:
            # A last will is stamped when the device's session began, hours ago perhaps; the
            # broker sends it now, when the device is gone. (One delivered retained, when the
            # gateway subscribes, keeps its own time: that device went long ago.)
            now = protocol.utcnow()
            if payload.at < now:
                payload = msgspec.structs.replace(payload, at=now)
        online_tap = isinstance(payload, Tap) and payload.offline is None
        if online_tap and not rate_checked and not self._taps.take(topic.device):
            return self._refuse_tap_rate(topic, ack)
        trespass = self._trespass(topic, payload)
        if trespass is not None:
            self._refuse(topic, *trespass, ack)
            return self._refused_for_good(topic, getattr(payload, "event_id", None))
        self.counters[f"accepted_{topic.channel.value}"] += 1
        tracked = _Settle(self, topic, getattr(payload, "event_id", None), ack)
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
            # Let the broker go on, but no receipt: the edge sends it again later.
            tracked.release()
        return None

    def _trespass(self, topic: Topic, payload: Payload) -> tuple[str, str] | None:
        """Return why a device may not say this (reason, detail), or ``None`` if it may."""
        policy = self._policy()
        # An online tap at another device's door is answered unknown_door by decide().
        if isinstance(payload, DoorEvent) or (
            isinstance(payload, Tap) and payload.offline is not None
        ):
            door = policy.doors.get(payload.door)
            if door is None or door.device != topic.device:
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

    def _refuse_tap_rate(self, topic: Topic, ack: Ack) -> None:
        # Faster than any reader is tapped: unanswered, and no receipt either, since the door
        # decides it offline and sends it again as such.
        self._refuse(topic, "tap_rate", "more taps than its doors' readers can read", ack)

    def _refuse(self, topic: Topic, why: str, detail: object, ack: Ack) -> None:
        self._reject(topic.device, _Quoted(topic), why, detail, ack)

    def _reject(self, device: str, where: object, why: str, detail: object, ack: Ack) -> None:
        self.counters[f"rejected_{why}"] += 1
        self._refusals.refused(device, why, where, detail)
        # Acknowledged on purpose: redelivering a bad message would only fail again.
        ack(False)

    def _refused_for_good(self, topic: Topic, event_id: str | None) -> None:
        if event_id is not None:
            self._connection.post(self._receipts.refused, topic, event_id)

    def _settled(self, settle: _Settle, stored: bool) -> None:
        # The message's commit is done (``stored``), or it is let go: it no longer counts
        # against its device's budget; the broker may forget it; if stored, the edge may too.
        with self._pending_lock:
            self._pending[settle.topic.device] -= 1
            if self._pending[settle.topic.device] <= 0:
                del self._pending[settle.topic.device]
        if stored and settle.event_id is not None:
            self._receipts.committed(settle.topic, settle.event_id)

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
        if row is None:
            self._connection.post(ack, False)  # recorded before: receipted on the loop
        self._later(topic, decision, None if row is None else Record("access", row, ack))

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
        policy = self._policy()
        badge = policy.badges.get(tap.credential.value)
        self.counters["offline_tap"] += 1
        row = {
            "event_id": tap.event_id,
            "site": topic.site,
            "device_id": topic.device,
            "door_id": tap.door,
            "credential_kind": tap.credential.kind.value,
            "credential": logged_credential(policy, tap.credential),
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
        self._later(topic, tap, Record("access", row, ack))

    def _on_door(self, topic: Topic, event: DoorEvent, ack: Ack) -> None:
        row = {
            "event_id": event.event_id,
            "site": topic.site,
            "device_id": topic.device,
            "door_id": event.door,
            "state": event.state.value,
            "at": event.at,
        }
        self._later(topic, event, Record("door", row, ack))

    def _on_desk(self, topic: Topic, event: DeskEvent, ack: Ack) -> None:
        row = {
            "event_id": event.event_id,
            "site": topic.site,
            "device_id": topic.device,
            "desk_id": event.desk,
            "occupied": event.occupied,
            "at": event.at,
        }
        self._later(topic, event, Record("desk", row, ack))

    def _on_status(self, topic: Topic, status: Status, ack: Ack) -> None:
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
        self._later(topic, status, Record("status", row, ack))

    def _later(self, topic: Topic, payload: Payload, record: Record | None) -> None:
        """Hand what ``payload`` changes in the rest of the gateway to the event loop."""
        self._connection.post(self._deliver, topic, payload, record)

    def _deliver(self, topic: Topic, payload: Payload, record: Record | None) -> None:
        # On the event loop, which owns occupancy, the observers and the writer's queue.
        # Ordered by the device's time, but never after now: a clock ahead must not pin a state.
        if isinstance(payload, DoorEvent):
            self._occupancy.apply_door(_until_now(payload))
        elif isinstance(payload, DeskEvent):
            self._occupancy.apply_desk(_until_now(payload))
        self._notify(topic, payload)
        if record is None:
            return
        if record.kind == "access":
            self._observe_access(record.row)
        self._writer.submit(record)

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
        # Written to the socket now, on this thread; nothing here needs its PUBACK (a door
        # that does not get it decides from its allow-list; the tap is still recorded).
        if not self._connection.answer(topic_name, protocol.encode(payload)):
            self.counters["decision_not_sent"] += 1


E = TypeVar("E", DoorEvent, DeskEvent)


def _until_now(event: E) -> E:
    now = protocol.utcnow()
    return event if event.at <= now else msgspec.structs.replace(event, at=now)


class _Settle:
    """The acknowledgement of one accepted message: the PUBACK, its budget, its receipt.

    Called with ``is_new`` once the message's record is committed (on the event loop);
    ``release()`` lets the message go without a receipt (a fault of ours). Once only.
    """

    __slots__ = ("_ack", "_done", "_ingest", "event_id", "topic")

    def __init__(self, ingest: Ingest, topic: Topic, event_id: str | None, ack: Ack) -> None:
        self._ingest = ingest
        self.topic = topic
        self.event_id = event_id
        self._ack = ack
        self._done = False
        with ingest._pending_lock:
            ingest._pending[topic.device] += 1

    def __call__(self, is_new: bool) -> None:
        self._settle(is_new, stored=True)

    def release(self) -> None:
        self._settle(False, stored=False)

    def _settle(self, is_new: bool, *, stored: bool) -> None:
        if self._done:
            return
        self._done = True
        self._ingest._settled(self, stored)
        self._ack(is_new)


def _event_id_in(raw: bytes) -> str | None:
    """Return the event id of a payload that is not valid otherwise, if it names one."""
    try:
        document = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    event_id = document.get("event_id") if isinstance(document, dict) else None
    try:
        return msgspec.convert(event_id, EventId) if event_id is not None else None
    except msgspec.ValidationError:
        return None


class _Quoted:
    """A topic as a refusal's log line quotes it, spelled only if the line is logged."""

    __slots__ = ("_topic",)

    def __init__(self, topic: object) -> None:
        self._topic = topic

    def __str__(self) -> str:
        return repr(str(self._topic))
