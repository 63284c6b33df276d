"""The edge's MQTT link: events leave through the durable outbox, decisions and allow-lists
come in, and ``status`` stays retained with a last will."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import aiomqtt

from edge_agent.cache import AllowlistCache
from edge_agent.config import EdgeConfig
from edge_agent.errors import NotConnectedError
from edge_agent.outbox import Entry, Outbox
from varco import __version__, protocol, transport
from varco.protocol import Channel, Command, Decision, DeviceState, PayloadError, Status, Tap

log = logging.getLogger(__name__)

# A PUBACK later than this means the connection is gone; the event is sent again.
PUBLISH_TIMEOUT_SECONDS = 10.0


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
        self.connected = asyncio.Event()
        self.rejected = 0
        self.foreign = 0
        self.on_command: Callable[[Command], None] | None = None
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
                    self._client = client
                    self.connected.set()
                    backoff = 0.2
                    log.info("connected to %s:%d", broker.host, broker.port)
                    try:
                        await self.publish_status()
                        async for message in client.messages:
                            try:
                                self._on_message(message)
                            except Exception:
                                # A fault of ours: the door must keep answering taps.
                                self.rejected += 1
                                log.exception("could not handle a message on %s", message.topic)
                    finally:
                        self.connected.clear()
                        self._client = None
                        await self._say_offline(client)
            except aiomqtt.MqttError as exc:
                log.warning("broker unreachable (%s); retrying in %.1fs", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

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

    def send(self, channel: Channel, payload: protocol.Payload) -> int:
        """Put an event in the outbox; it leaves when the broker can take it."""
        return self._outbox.put(channel, protocol.encode(payload))

    async def _forward(self) -> None:
        # One event at a time, oldest first, each removed only once the broker has it. Taps
        # being sent on the express lane (``ask``) are skipped while they are in flight.
        while True:
            await self.connected.wait()
            self._outbox.expect()
            # Read after the wait: a tap decided offline meanwhile has been rewritten.
            entry = self._outbox.oldest(excluding=self._express)
            if entry is None:
                await self._outbox.wait()
                continue
            try:
                await self._publish(entry.channel, entry.payload)
            except NotConnectedError as exc:
                log.info("outbox paused (%s); %d events wait", exc, self._outbox.depth)
                await asyncio.sleep(0.1)
                continue
            self._outbox.remove(entry)

    async def ask(self, tap: Tap, wait_seconds: float) -> Answer:
        """Send a tap through the outbox and wait up to ``wait_seconds`` for its decision."""
        data = protocol.encode(tap)
        seq = self._outbox.put(Channel.TAP, data)
        if not self.connected.is_set():
            return Answer(None, seq)  # no point waiting: decide offline at once
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._pending[tap.event_id] = future
        # A member at the door does not queue behind desk events: the tap leaves at once, and
        # stays in the outbox until the broker has it, as every event does.
        self._express.add(seq)
        task = asyncio.get_running_loop().create_task(
            self._express_send(Entry(seq, Channel.TAP, data))
        )
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        try:
            async with asyncio.timeout(wait_seconds):
                return Answer(await future, seq)
        except TimeoutError:
            return Answer(None, seq)
        finally:
            self._pending.pop(tap.event_id, None)

    async def _express_send(self, entry: Entry) -> None:
        try:
            await self._publish(entry.channel, entry.payload)
            self._outbox.remove(entry)
        except NotConnectedError:
            pass  # the forwarder sends it after the reconnect
        finally:
            self._express.discard(entry.seq)
            self._outbox.nudge()

    def _on_command(self, raw: bytes) -> None:
        try:
            command = protocol.decode_as(Command, raw)
        except PayloadError as exc:
            self.rejected += 1
            log.warning("rejected command: %s", exc)
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
        if topic == self.topic(Channel.ALLOWLIST):
            if self._cache.update(bytes(raw)) and self.on_allowlist is not None:
                self.on_allowlist()
            return
        if topic == self.topic(Channel.COMMAND):
            self._on_command(bytes(raw))
            return
        if topic != self.topic(Channel.DECISION):
            # A broker with per-device ACLs never sends these; the demo's embedded one does.
            self.foreign += 1
            log.debug("ignored a message on %s, not one of this device's topics", topic)
            return
        try:
            decision = protocol.decode_as(Decision, bytes(raw))
        except PayloadError as exc:
            self.rejected += 1
            log.warning("rejected decision on %s: %s", topic, exc)
            return
        future = self._pending.get(decision.event_id)
        if future is not None and not future.done():
            future.set_result(decision)
