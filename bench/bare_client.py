"""The baseline: a bare paho-mqtt client with ``TCP_NODELAY``, as little as MQTT can be.

Every benchmark divides Varco's figure by this client's on the same broker in the same run,
so the ratios say what Varco adds, whatever the machine.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from bench.broker import Broker

TIMEOUT_SECONDS = 10.0


def _nodelay(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
    # Set before CONNECT is sent, as varco.transport does through aiomqtt's socket_options.
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class BareClient:
    """A connected paho client running its own network thread; a context manager."""

    def __init__(self, broker: Broker, client_id: str) -> None:
        self.paho = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        self.paho.on_socket_open = _nodelay
        self.paho.on_connect = self._connected
        self.paho.on_subscribe = self._subscribed
        self._broker = broker
        self._connack = threading.Event()
        self._subacks: dict[int, threading.Event] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> BareClient:
        self.paho.connect(self._broker.host, self._broker.port, keepalive=30)
        self.paho.loop_start()
        if not self._connack.wait(TIMEOUT_SECONDS):
            self.paho.loop_stop()
            raise TimeoutError(f"no CONNACK from {self._broker.host}:{self._broker.port}")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()

    def subscribe(self, topic: str, qos: int = 1) -> None:
        """Subscribe and wait for the broker's SUBACK."""
        with self._lock:  # the SUBACK may arrive before subscribe() returns its mid
            result, mid = self.paho.subscribe(topic, qos)
            if mid is None:
                raise ConnectionError(f"cannot subscribe to {topic}: {result}")
            done = self._subacks.setdefault(mid, threading.Event())
        if not done.wait(TIMEOUT_SECONDS):
            raise TimeoutError(f"no SUBACK for {topic}")

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Publish and wait until the broker has it (PUBACK at QoS 1)."""
        self.paho.publish(topic, payload, qos=qos).wait_for_publish(TIMEOUT_SECONDS)

    def _connected(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: Any,
        reason: ReasonCode,
        _properties: Any,
    ) -> None:
        if not reason.is_failure:
            self._connack.set()

    def _subscribed(
        self, _client: mqtt.Client, _userdata: Any, mid: int, _reasons: Any, _properties: Any
    ) -> None:
        with self._lock:
            self._subacks.setdefault(mid, threading.Event()).set()
