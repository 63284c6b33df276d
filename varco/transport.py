"""How every Varco process opens its MQTT connection.

Both the gateway and the edge agent build their clients here so that no socket is ever opened
without ``TCP_NODELAY``: with Nagle's algorithm on, a QoS 1 request/reply over MQTT waits for
delayed ACKs and takes 40-90 ms instead of about one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

log = logging.getLogger(__name__)

NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
# How long leaving may take when we leave because of an error or a stop.
LEAVE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Tls:
    """TLS to the broker: the broker's certificate is always verified, its name checked.

    ``ca_file`` is the CA that signed the broker's certificate (the system's CAs when unset);
    ``cert_file`` and ``key_file`` are this client's own certificate, for brokers that ask.
    """

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def context(self) -> ssl.SSLContext:
        """Return the client context; raise ``OSError``/``ssl.SSLError`` for a bad file."""
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file is not None:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def check(self) -> None:
        """Raise ``TlsError`` naming the file, unless these files make a client context.

        Called at start (the edge's configuration, the gateway's settings), so that a
        certificate that cannot be used is a clear mistake then, not a failed connection later.
        """
        if self.key_file is not None and self.cert_file is None:
            raise TlsError("key_file", "given without cert_file")
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise TlsError(name, f"no such file: {path}")
        try:
            self.context()
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(None, f"the certificates cannot be used: {exc}") from None


class BrokerUnavailableError(ConnectionError):
    """The broker cannot be reached now, or did not acknowledge a publish in time."""


class TlsError(ValueError):
    """TLS files that cannot be used; ``file`` names the one at fault, when it is one."""

    def __init__(self, file: str | None, reason: str) -> None:
        super().__init__(f"{file}: {reason}" if file else reason)
        self.file = file
        self.reason = reason


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker is and who we are to it."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    keepalive: int = 30
    tls: Tls | None = None


def client(
    broker: BrokerAddress,
    *,
    identifier: str,
    clean_session: bool = True,
    will: aiomqtt.Will | None = None,
    **options: Any,
) -> aiomqtt.Client:
    """Return an MQTT 3.1.1 client for ``broker`` with TCP_NODELAY on its socket.

    MQTT 3.1.1 is what every broker we support speaks, the embedded demo broker included.
    ``max_queued_incoming_messages`` is left unbounded on purpose: a bounded queue in aiomqtt
    drops messages silently.
    """
    return aiomqtt.Client(
        broker.host,
        broker.port,
        identifier=identifier,
        username=broker.username,
        password=broker.password,
        keepalive=broker.keepalive,
        clean_session=clean_session,
        will=will,
        protocol=aiomqtt.ProtocolVersion.V311,
        socket_options=[NODELAY],
        tls_context=broker.tls.context() if broker.tls is not None else None,
        **options,
    )


def paho_client(
    broker: BrokerAddress, *, identifier: str, clean_session: bool = True
) -> mqtt.Client:
    """Return a bare paho MQTT 3.1.1 client for ``broker``, TCP_NODELAY on every socket it opens.

    For a process that reads on paho's own network thread (the gateway's ingest); the same
    settings as ``client`` otherwise. Exceptions in its callbacks are logged by paho, never
    raised into its network thread.
    """
    paho = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=identifier,
        clean_session=clean_session,
        protocol=MQTTProtocolVersion.MQTTv311,
    )
    paho.suppress_exceptions = True
    paho.enable_logger(_PAHO_LOG)
    if broker.username is not None:
        paho.username_pw_set(broker.username, broker.password)
    if broker.tls is not None:
        paho.tls_set_context(broker.tls.context())
    paho.on_socket_open = _nodelay
    return paho


class _StoppedLoop(logging.Filter):
    """paho's network thread, stopped after ``disconnect()``, says so once at ERROR: noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Client is not connected")


_PAHO_LOG = logging.getLogger(f"{__name__}.paho")
_PAHO_LOG.addFilter(_StoppedLoop())


def _nodelay(_client: mqtt.Client, _userdata: object, sock: Any) -> None:
    if isinstance(sock, socket.socket):  # an ssl.SSLSocket is one too
        sock.setsockopt(*NODELAY)


@contextlib.asynccontextmanager
async def connection(client: aiomqtt.Client) -> AsyncIterator[aiomqtt.Client]:
    """``async with client``, except that leaving never hides why we leave.

    aiomqtt's exit waits up to its timeout (10 s) for the DISCONNECT to go out, then raises
    ``MqttError``. Raised while a stop (a cancellation) is on its way out, that error would
    replace it, and a loop that reconnects on ``MqttError`` would go on instead of stopping.
    Leaving because of an exception, we wait at most ``LEAVE_SECONDS`` and keep the exception.
    """
    await client.__aenter__()
    try:
        yield client
    except BaseException as exc:
        try:
            async with asyncio.timeout(LEAVE_SECONDS):
                await client.__aexit__(type(exc), exc, exc.__traceback__)
        except (aiomqtt.MqttError, TimeoutError) as goodbye:
            log.warning("left the broker without saying goodbye (%s)", goodbye or "timed out")
        raise
    await client.__aexit__(None, None, None)
