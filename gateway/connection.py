"""The gateway's MQTT connection: paho's own network thread, acknowledgements sent by hand.

Device messages are handed to ``on_message`` *on the network thread*, as they are read: a tap
is decided and its answer written to the socket there, before the next message is read, and a
message a device had no right to send is refused at the cost of a lookup. A flood from one
device is therefore read as fast as the broker sends it (a bare paho subscriber keeps up with a
bare paho publisher; an asyncio queue in between did not), and the other doors' taps behind it
wait microseconds per message, not the flood's whole backlog. What the rest of the gateway owns
(the writer's queue, the live page, the recorder) is reached through the event loop.

PUBACKs are sent by hand (paho's manual acknowledgement, a public API) once what a message
carries is committed; acknowledging from the event loop's thread is safe in paho's threaded
mode, which only queues the packet and wakes the network thread. An acknowledgement belongs to
the connection that received the message: after a reconnect the broker sends the message again
(same packet id, a persistent session), and the handlers are idempotent, so a stale one is
dropped rather than sent on the new connection.

paho reconnects by itself, waiting 1 s, then twice as long each time, up to 10 s.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from varco import transport

log = logging.getLogger(__name__)

Ack = Callable[[bool], None]
OnMessage = Callable[[str, bytes, Ack, bool], None]

# How long ``publish`` waits for the broker's PUBACK before it says the broker is away.
PUBLISH_SECONDS = 10.0
RECONNECT_MIN_SECONDS = 1
RECONNECT_MAX_SECONDS = 10


class BrokerConnection:
    """One persistent MQTT session for the gateway; ``await run()`` keeps it up until cancelled."""

    def __init__(
        self,
        broker: transport.BrokerAddress,
        *,
        client_id: str,
        subscriptions: list[str],
        on_message: OnMessage,
    ) -> None:
        self._broker = broker
        self._subscriptions = subscriptions
        self._on_message = on_message
        self._client = transport.paho_client(broker, identifier=client_id, clean_session=False)
        self._client.manual_ack_set(True)
        self._client.reconnect_delay_set(RECONNECT_MIN_SECONDS, RECONNECT_MAX_SECONDS)
        self._client.on_connect = self._connected
        self._client.on_connect_fail = self._connect_failed
        self._client.on_subscribe = self._subscribed
        self._client.on_disconnect = self._disconnected
        self._client.on_message = self._received
        self._loop: asyncio.AbstractEventLoop | None = None
        self._network_thread: int | None = None
        # Bumped on every CONNACK: an acknowledgement carries the one it was received under.
        self._generation = 0
        self._up = False
        self._stopping = False
        self._writing = threading.Lock()
        self.connected = asyncio.Event()
        # Called on the event loop each time the session is up and subscribed again.
        self.on_connect: list[Callable[[], None]] = []

    async def run(self) -> None:
        """Connect, and stay connected (paho reconnects) until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._client.connect_async(self._broker.host, self._broker.port, self._broker.keepalive)
        self._client.loop_start()
        try:
            await asyncio.Event().wait()
        finally:
            with self._writing:
                # From now on nothing writes from inside a callback: paho writes the
                # DISCONNECT queued below by calling on_disconnect under the lock it holds
                # while it runs on_message, and a write from on_message would wait for itself.
                self._stopping = True
            self._client.disconnect()
            await asyncio.to_thread(self._client.loop_stop)
            self._up = False
            self.connected.clear()

    def post(self, callback: Callable[..., None], *args: Any) -> None:
        """Run ``callback(*args)`` on the event loop (from the network thread)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(callback, *args)

    def answer(self, topic: str, data: bytes) -> bool:
        """Publish at QoS 1 and, on the network thread, write it to the socket now.

        For decisions: nothing waits for their PUBACK (a door that gets none decides from its
        allow-list). Return ``False`` if it could not even be queued (not connected).
        """
        info = self._client.publish(topic, data, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            log.warning("not sent on %s: %s", topic, mqtt.error_string(info.rc))
            return False
        if threading.get_ident() == self._network_thread:
            # Otherwise it would wait for the rest of what this read brought in.
            with self._writing:
                if not self._stopping:
                    self._client.loop_write()
        return True

    async def publish(self, topic: str, data: bytes, *, retain: bool = False) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK.

        Raise ``transport.BrokerUnavailableError`` if not connected or not acknowledged in time.
        """
        if not self._up:
            raise transport.BrokerUnavailableError("not connected to the broker")
        info = self._client.publish(topic, data, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise transport.BrokerUnavailableError(mqtt.error_string(info.rc))
        published = await asyncio.to_thread(_wait_published, info, PUBLISH_SECONDS)
        if not published:
            raise transport.BrokerUnavailableError("the broker did not acknowledge in time")

    def acker(self, mid: int, qos: int) -> Ack:
        """Return the acknowledgement of the message ``mid`` just received."""
        generation = self._generation

        def ack(_is_new: bool) -> None:
            if qos == 0 or generation != self._generation or not self._up:
                return
            self._client.ack(mid, qos)

        return ack

    # --- paho's callbacks, on its network thread ----------------------------------------

    def _connected(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self._network_thread = threading.get_ident()
        if reason.is_failure:
            log.warning("the broker refused the gateway: %s", reason)
            return
        self._generation += 1
        self._up = True
        # What devices send, nothing else: not our own decisions and allow-lists.
        client.subscribe([(filter_, 1) for filter_ in self._subscriptions])
        log.info("connected to %s:%d", self._broker.host, self._broker.port)

    def _subscribed(self, *_args: object) -> None:
        self.post(self._on_up)

    def _on_up(self) -> None:
        self.connected.set()
        for callback in self.on_connect:
            try:
                callback()
            except Exception:
                log.exception("on-connect callback %r failed", callback)

    def _connect_failed(self, _client: mqtt.Client, _userdata: object) -> None:
        log.warning(
            "cannot reach the broker at %s:%d; retrying", self._broker.host, self._broker.port
        )

    def _disconnected(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if self._up and not self._stopping:
            log.warning("broker connection lost (%s); reconnecting", reason)
        self._up = False
        self.post(self.connected.clear)

    def _received(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        ack = self.acker(message.mid, message.qos)
        try:
            self._on_message(message.topic, bytes(message.payload), ack, message.retain)
        except Exception:
            # A fault of ours (a topic's UTF-8 is checked by the broker): the network thread
            # must go on reading; the message is let go rather than redelivered to fail again.
            log.exception("a message (packet %d) could not be handled", message.mid)
            ack(False)


def _wait_published(info: mqtt.MQTTMessageInfo, timeout: float) -> bool:
    try:
        info.wait_for_publish(timeout)
    except RuntimeError:  # the connection went while waiting
        return False
    return info.is_published()
