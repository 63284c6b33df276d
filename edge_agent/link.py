"""The edge's MQTT link: events leave through the durable outbox, decisions and allow-lists
come in, and ``status`` stays retained with a last will.

Every event stays in the outbox until the gateway's receipt names it: the forwarder sends
events in order without waiting for receipts, up to ``RECEIPT_WINDOW`` unreceipted at a time
(below the gateway's budget of messages a device may have waiting for their commit), and sends
again, in order, what has had no receipt within ``RECEIPT_SECONDS`` and everything after a
reconnect. A broker that does not let this device read receipts (a role made before they
existed) gets the old behaviour, said once in the log: an event leaves on the broker's PUBACK.

A door's taps tell a dead link sooner than the keepalive: ``SILENT_TAPS`` taps in a row with
no answer drop the connection (it is made again at once if it can be), and until the gateway
is heard from again (any decision, receipt or allow-list), taps are decided offline at once
instead of after a timeout each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import aiomqtt
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.cache import AllowlistCache
from edge_agent.config import EdgeConfig
from edge_agent.errors import NotConnectedError
from edge_agent.outbox import Entry, Outbox
from varco import __version__, protocol, transport
from varco.protocol import (
    Channel,
    Command,
    Decision,
    DeviceState,
    PayloadError,
    Receipt,
    Status,
    Tap,
)

log = logging.getLogger(__name__)

M = TypeVar("M", Command, Decision, Receipt)

# A PUBACK later than this means the connection is gone; the event is sent again.
PUBLISH_TIMEOUT_SECONDS = 10.0
# Events sent and not yet receipted, at most; the gateway refuses a device's 501st.
RECEIPT_WINDOW = 200
# An event with no receipt this long after it was sent is sent again.
RECEIPT_SECONDS = 10.0
# Unanswered taps in a row that mean the link (or the gateway) is gone.
SILENT_TAPS = 2


@dataclass(frozen=True, slots=True)
class _Sent:
    entry: Entry
    at: float  # monotonic


class _LinkDeadError(Exception):
    """Taps go unanswered on a connection that still looks up: make it again."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back for a tap: the gateway's decision, or ``None`` if it came too late."""

    decision: Decision | None
    seq: int  # the tap's place in the outbox, to rewrite it as decided offline


class Link:
    """One device's connection to the broker, kept up by ``run()``."""

    def __init__(
        self,
        config: EdgeConfig,
        outbox: Outbox,
        cache: AllowlistCache,
        *,
        started_at: datetime,
        clock: Callable[[], datetime] = protocol.utcnow,
    ) -> None:
        self._config = config
        self._outbox = outbox
        self._cache = cache
        self._started_at = started_at
        self._clock = clock
        self._client: aiomqtt.Client | None = None
        self._pending: dict[str, asyncio.Future[Decision]] = {}
        self._express: set[int] = set()
        self._sending: set[asyncio.Task[None]] = set()
        # Sent on this connection, by event id, awaiting their receipt; the forwarder's place.
        self._inflight: dict[str, _Sent] = {}
        self._cursor = 0
        self._receipts = True  # False when the broker does not let us read them
        self._receipted = asyncio.Event()
        self._unanswered = 0
        self._silent = False  # the gateway has not answered lately: decide offline at once
        self._dead = asyncio.Event()
        self.connected = asyncio.Event()
        self.rejected = 0
        self.foreign = 0
        self.refused = 0  # events the gateway refused for good
        self.on_command: Callable[[Command], None] | None = None
        # A config pushed by the gateway (the retained ``config`` channel): return whether
        # it was applied; what was applied, or why not, is then reported in ``status``.
        self.on_config: Callable[[bytes], bool] | None = None
        self.config_state: Callable[[], tuple[int | None, str | None]] | None = None
        self.on_allowlist: Callable[[], None] | None = None
        # A missed allow-list update: our status names the version we hold, and the gateway,
        # seeing it behind, sends the list whole.
        cache.on_gap = self._report_status

    def topic(self, channel: Channel) -> str:
        return protocol.topic(self._config.site, self._config.device_id, channel)

    def status(self, state: DeviceState) -> Status:
        """Describe this device's health now."""
        now = self._clock()
        allowlist = self._cache.current
        config_version, config_error = self.config_state() if self.config_state else (None, None)
        return Status(
            state=state,
            software=f"varco-edge {__version__}",
            started_at=self._started_at,
            at=now,
            uptime_seconds=max(0.0, (now - self._started_at).total_seconds()),
            allowlist_version=allowlist.version if allowlist else None,
            allowlist_issued_at=allowlist.issued_at if allowlist else None,
            outbox_depth=self._outbox.depth,
            outbox_dropped=self._outbox.dropped,
            config_version=config_version,
            config_error=config_error,
        )

    async def run(self) -> None:
        """Stay connected and drain the outbox until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._connect_forever(), name="mqtt")
            tasks.create_task(self._forward(), name="outbox")

    async def _connect_forever(self) -> None:
        broker = self._config.broker
        address = transport.BrokerAddress(
            host=broker.host,
            port=broker.port,
            username=broker.username,
            password=broker.password.get_secret_value() if broker.password else None,
            keepalive=broker.keepalive,
            tls=broker.tls.transport() if broker.tls is not None else None,
        )
        backoff = 0.2
        while True:
            will = aiomqtt.Will(
                self.topic(Channel.STATUS),
                protocol.encode(self.status(DeviceState.OFFLINE)),
                qos=1,
                retain=True,
            )
            client = transport.client(address, identifier=self._config.device_id, will=will)
            try:
                async with transport.connection(client):
                    await client.subscribe(self.topic(Channel.DECISION), qos=1)
                    await client.subscribe(self.topic(Channel.ALLOWLIST), qos=1)
                    await client.subscribe(self.topic(Channel.COMMAND), qos=1)
                    await client.subscribe(self.topic(Channel.CONFIG), qos=1)
                    self._receipts = _granted(
                        await client.subscribe(self.topic(Channel.RECEIPT), qos=1)
                    )
                    if not self._receipts:
                        log.warning(
                            "the broker does not let this device read its receipts (a role"
                            " made before receipts?): events leave the outbox on the broker's"
                            " PUBACK, and may be lost if the broker and the gateway fail together"
                        )
                    self._inflight.clear()  # all sent again, in order, on this connection
                    self._cursor = 0
                    self._dead.clear()
                    self._client = client
                    self.connected.set()
                    backoff = 0.2
                    log.info("connected to %s:%d", broker.host, broker.port)
                    try:
                        await self.publish_status()
                        async with asyncio.TaskGroup() as tasks:
                            tasks.create_task(self._read(client))
                            tasks.create_task(self._until_dead())
                    finally:
                        self.connected.clear()
                        self._client = None
                        await self._say_offline(client)
            except* aiomqtt.MqttError as group:
                log.warning(
                    "broker unreachable (%s); retrying in %.1fs", group.exceptions[0], backoff
                )
            except* _LinkDeadError:
                log.warning(
                    "%d taps in a row went unanswered: connecting again, deciding offline",
                    SILENT_TAPS,
                )
                backoff = 0.0
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            try:
                self._on_message(message)
            except Exception:
                # A fault of ours: the door must keep answering taps.
                self.rejected += 1
                log.exception("could not handle a message on %s", message.topic)

    async def _until_dead(self) -> None:
        await self._dead.wait()
        raise _LinkDeadError

    async def _say_offline(self, client: aiomqtt.Client) -> None:
        # On a clean stop the broker would not send the will: say it ourselves.
        with contextlib.suppress(aiomqtt.MqttError):
            await client.publish(
                self.topic(Channel.STATUS),
                protocol.encode(self.status(DeviceState.OFFLINE)),
                qos=1,
                retain=True,
                timeout=1,
            )

    async def publish_status(self) -> None:
        """Publish this device's health, retained."""
        await self._publish(
            Channel.STATUS, protocol.encode(self.status(DeviceState.ONLINE)), retain=True
        )

    def _report_status(self) -> None:
        if self._client is None:
            return  # a status goes out at every connect anyway
        task = asyncio.create_task(self._status_now())
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _status_now(self) -> None:
        try:
            await self.publish_status()
        except NotConnectedError as exc:
            log.info("status not sent (%s); it goes out at the next connect", exc)

    async def _publish(self, channel: Channel, data: bytes, *, retain: bool = False) -> None:
        client = self._client
        if client is None:
            raise NotConnectedError("not connected to the broker")
        try:
            await client.publish(
                self.topic(channel), data, qos=1, retain=retain, timeout=PUBLISH_TIMEOUT_SECONDS
            )
        except aiomqtt.MqttError as exc:
            raise NotConnectedError(str(exc)) from exc

    def send(
        self, channel: Channel, payload: protocol.Tap | protocol.DoorEvent | protocol.DeskEvent
    ) -> int:
        """Put an event in the outbox; it leaves when the gateway has stored it."""
        return self._outbox.put(channel, protocol.encode(payload), payload.event_id)

    async def _forward(self) -> None:
        # Oldest first, each kept until its receipt. Taps being sent on the express lane
        # (``ask``) are skipped while they are in flight.
        while True:
            await self.connected.wait()
            self._outbox.expect()
            self._receipted.clear()
            self._send_overdue_again()
            if len(self._inflight) >= RECEIPT_WINDOW:
                # asyncio.timeout, not wait_for: 3.11's wait_for may swallow a cancellation.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RECEIPT_SECONDS / 4):
                        await self._receipted.wait()
                continue
            # Read after the wait: a tap decided offline meanwhile has been rewritten.
            entry = self._outbox.after(self._cursor)
            if entry is None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._next_due()):
                        await self._outbox.wait()
                continue
            self._cursor = entry.seq
            sent = self._inflight.get(entry.event_id)
            if entry.seq in self._express or (sent is not None and sent.entry == entry):
                continue
            try:
                await self._publish(entry.channel, entry.payload)
            except NotConnectedError as exc:
                log.info("outbox paused (%s); %d events wait", exc, self._outbox.depth)
                self._cursor = entry.seq - 1
                await asyncio.sleep(0.1)
                continue
            self._published(entry)

    def _published(self, entry: Entry) -> None:
        # The broker has it; the gateway may not have stored it yet.
        if self._receipts and entry.event_id:
            self._inflight[entry.event_id] = _Sent(entry, time.monotonic())
        else:
            self._outbox.remove(entry)

    def _send_overdue_again(self) -> None:
        deadline = time.monotonic() - RECEIPT_SECONDS
        overdue = {k: sent.entry.seq for k, sent in self._inflight.items() if sent.at < deadline}
        if overdue:
            # From the first of them on, in order; those receipted meanwhile are gone.
            for event_id in overdue:
                del self._inflight[event_id]
            self._cursor = min(self._cursor, min(overdue.values()) - 1)

    def _next_due(self) -> float:
        if not self._inflight:
            return RECEIPT_SECONDS
        oldest = min(sent.at for sent in self._inflight.values())
        return max(0.05, oldest + RECEIPT_SECONDS - time.monotonic())

    def _on_receipt(self, raw: bytes) -> None:
        receipt = self._decoded(Receipt, raw, Channel.RECEIPT)
        if receipt is None:
            return
        for event_id in (*receipt.committed, *receipt.refused):
            # Only what was sent on this connection, as it was sent: a tap rewritten as
            # decided offline since must still leave.
            sent = self._inflight.pop(event_id, None)
            if sent is not None:
                self._outbox.remove(sent.entry)
        for event_id in receipt.refused:
            self.refused += 1
            log.warning("the gateway refused event %s for good (its log says why)", event_id)
        self._receipted.set()
        self._outbox.nudge()

    async def ask(self, tap: Tap, wait_seconds: float) -> Answer:
        """Send a tap through the outbox and wait up to ``wait_seconds`` for its decision."""
        data = protocol.encode(tap)
        seq = self._outbox.put(Channel.TAP, data, tap.event_id)
        if not self.connected.is_set() or self._silent:
            # No point waiting: decide offline at once. The tap still leaves, in order.
            self._outbox.nudge()
            return Answer(None, seq)
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._pending[tap.event_id] = future
        # A member at the door does not queue behind desk events: the tap leaves at once, and
        # stays in the outbox until the gateway has stored it, as every event does.
        self._express.add(seq)
        task = asyncio.get_running_loop().create_task(
            self._express_send(Entry(seq, Channel.TAP, data, tap.event_id))
        )
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        try:
            async with asyncio.timeout(wait_seconds):
                decision = await future
        except TimeoutError:
            self._unanswered += 1
            if self._unanswered >= SILENT_TAPS and not self._silent:
                self._silent = True
                self._dead.set()
            return Answer(None, seq)
        finally:
            self._pending.pop(tap.event_id, None)
        return Answer(decision, seq)

    def decided_offline(self, seq: int, tap: Tap) -> None:
        """Record that the door decided ``tap`` (put at ``seq``) itself: it leaves as such.

        Rewritten in the outbox if it is still there (and sent again, even if the first
        version is in flight: the gateway keeps the door's word over its own); if it has
        already been stored, the decided version follows it.
        """
        if self._outbox.replace(seq, protocol.encode(tap)):
            self._inflight.pop(tap.event_id, None)
            self._cursor = min(self._cursor, seq - 1)
            self._outbox.nudge()
        else:
            self.send(Channel.TAP, tap)

    def _heard_from_gateway(self) -> None:
        self._unanswered = 0
        if self._silent:
            self._silent = False
            log.info("the gateway answers again: taps wait for its decisions")

    async def _express_send(self, entry: Entry) -> None:
        try:
            await self._publish(entry.channel, entry.payload)
            self._published(entry)
        except NotConnectedError:
            pass  # the forwarder sends it after the reconnect
        finally:
            self._express.discard(entry.seq)
            self._outbox.nudge()

    def _decoded(self, model: type[M], raw: bytes, channel: Channel) -> M | None:
        """Return ``raw`` as a ``model``, or ``None``: refused, logged with why and counted."""
        try:
            return protocol.decode_as(model, raw)
        except PayloadError as exc:
            self.rejected += 1
            log.warning("rejected %s: %s", channel.value, exc)
            return None

    def _on_command(self, raw: bytes) -> None:
        command = self._decoded(Command, raw, Channel.COMMAND)
        if command is None:
            return
        if self._clock() >= command.expires_at:
            # An unlock queued while we were away must not open the door hours later.
            log.warning("command %s expired at %s; ignored", command.command_id, command.expires_at)
            return
        if self.on_command is not None:
            self.on_command(command)

    def _on_message(self, message: aiomqtt.Message) -> None:
        raw = message.payload if isinstance(message.payload, bytes | bytearray) else b""
        topic = message.topic.value
        if topic == self.topic(Channel.RECEIPT):
            self._heard_from_gateway()
            self._on_receipt(bytes(raw))
            return
        if topic == self.topic(Channel.ALLOWLIST):
            self._heard_from_gateway()
            if self._cache.update(bytes(raw)) and self.on_allowlist is not None:
                self.on_allowlist()
            return
        if topic == self.topic(Channel.CONFIG):
            if self.on_config is not None:
                self.on_config(bytes(raw))
                self._report_status()  # applied or refused: the gateway learns it now
            return
        if topic == self.topic(Channel.COMMAND):
            self._on_command(bytes(raw))
            return
        if topic != self.topic(Channel.DECISION):
            # A broker with per-device ACLs never sends these; the demo's embedded one does.
            self.foreign += 1
            log.debug("ignored a message on %s, not one of this device's topics", topic)
            return
        decision = self._decoded(Decision, bytes(raw), Channel.DECISION)
        if decision is None:
            return
        self._heard_from_gateway()
        future = self._pending.get(decision.event_id)
        if future is not None and not future.done():
            future.set_result(decision)


def _granted(result: object) -> bool:
    """Tell whether a SUBACK granted the subscription (0x80 or a failure code: refused)."""
    codes = result if isinstance(result, tuple | list) else [result]
    for code in codes:
        if isinstance(code, ReasonCode) and code.is_failure:
            return False
        if isinstance(code, int) and code >= 0x80:
            return False
    return True
