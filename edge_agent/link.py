"""The edge's MQTT link: publishes events, receives decisions, keeps ``status`` retained."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

import aiomqtt

from edge_agent.config import EdgeConfig
from edge_agent.errors import NotConnectedError
from varco import __version__, protocol, transport
from varco.protocol import Channel, Decision, DeviceState, PayloadError, Status, Tap

log = logging.getLogger(__name__)


class Link:
    """One device's connection to the broker, kept up by ``run()``."""

    def __init__(self, config: EdgeConfig, *, started_at: datetime) -> None:
        self._config = config
        self._started_at = started_at
        self._client: aiomqtt.Client | None = None
        self._pending: dict[str, asyncio.Future[Decision]] = {}
        self._sending: set[asyncio.Task[None]] = set()
        self.connected = asyncio.Event()
        self.rejected = 0
        self.unsent = 0

    def topic(self, channel: Channel) -> str:
        return protocol.topic(self._config.site, self._config.device_id, channel)

    def status(self, state: DeviceState) -> Status:
        return Status(
            state=state,
            software=f"varco-edge {__version__}",
            started_at=self._started_at,
            at=protocol.utcnow(),
        )

    async def run(self) -> None:
        """Stay connected until cancelled; on the way out, say offline."""
        broker = self._config.broker
        address = transport.BrokerAddress(
            host=broker.host,
            port=broker.port,
            username=broker.username,
            password=broker.password.get_secret_value() if broker.password else None,
            keepalive=broker.keepalive,
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
                async with client:
                    await client.subscribe(self.topic(Channel.DECISION), qos=1)
                    self._client = client
                    self.connected.set()
                    backoff = 0.2
                    log.info("connected to %s:%d", broker.host, broker.port)
                    await self.publish(Channel.STATUS, self.status(DeviceState.ONLINE), retain=True)
                    try:
                        async for message in client.messages:
                            self._on_message(message)
                    finally:
                        self.connected.clear()
                        self._client = None
                        with contextlib.suppress(aiomqtt.MqttError):
                            await client.publish(
                                self.topic(Channel.STATUS),
                                protocol.encode(self.status(DeviceState.OFFLINE)),
                                qos=1,
                                retain=True,
                                timeout=1,
                            )
            except aiomqtt.MqttError as exc:
                log.warning("broker unreachable (%s); retrying in %.1fs", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    async def publish(
        self,
        channel: Channel,
        payload: protocol.Payload,
        *,
        retain: bool = False,
    ) -> None:
        """Publish at QoS 1 and wait for the broker's acknowledgement."""
        client = self._client
        if client is None:
            raise NotConnectedError("not connected to the broker")
        try:
            await client.publish(
                self.topic(channel), protocol.encode(payload), qos=1, retain=retain
            )
        except aiomqtt.MqttError as exc:
            raise NotConnectedError(str(exc)) from exc

    def send_soon(self, channel: Channel, payload: protocol.Payload) -> None:
        """Publish an event in the background; callable from plain (non-async) callbacks."""
        task = asyncio.get_running_loop().create_task(self._send(channel, payload))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, channel: Channel, payload: protocol.Payload) -> None:
        try:
            await self.publish(channel, payload)
        except NotConnectedError as exc:
            # Counted and logged; a durable outbox in front of the link is what keeps these.
            self.unsent += 1
            log.warning("%s event not sent: %s", channel.value, exc)

    async def ask(self, tap: Tap, wait_seconds: float) -> Decision | None:
        """Send a tap and wait up to ``wait_seconds`` for its decision; ``None`` if none came."""
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._pending[tap.event_id] = future
        try:
            async with asyncio.timeout(wait_seconds):
                await self.publish(Channel.TAP, tap)
                return await future
        except (TimeoutError, NotConnectedError):
            return None
        finally:
            self._pending.pop(tap.event_id, None)

    def _on_message(self, message: aiomqtt.Message) -> None:
        raw = message.payload if isinstance(message.payload, bytes | bytearray) else b""
        try:
            decision = protocol.decode_as(Decision, bytes(raw))
        except PayloadError as exc:
            self.rejected += 1
            log.warning("rejected decision on %s: %s", message.topic.value, exc)
            return
        future = self._pending.get(decision.event_id)
        if future is not None and not future.done():
            future.set_result(decision)
