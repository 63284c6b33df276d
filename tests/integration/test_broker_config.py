"""The broker configuration we ship, run by a real mosquitto: what it lets through, and what not."""

from __future__ import annotations

import asyncio
import getpass
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from tests.conftest import Mosquitto, free_port, need
from varco.protocol import BROKER_MESSAGE_SIZE_LIMIT, MAX_ALLOWLIST_BYTES

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "mosquitto" / "mosquitto.conf"

pytestmark = pytest.mark.integration


@pytest.fixture
def shipped_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """deploy/mosquitto/mosquitto.conf, with only its port and files made local."""
    need(shutil.which("mosquitto") is not None, "mosquitto is not installed")
    port = free_port()
    log = tmp_path / "mosquitto.log"
    config = SHIPPED.read_text()
    local = {
        r"^persistence_location .*$": f"persistence_location {tmp_path}/",
        r"^listener 1883 0\.0\.0\.0$": f"listener {port} 127.0.0.1",
        # Root drops to the mosquitto user, which may not write here; stay who we are.
        r"^log_dest stdout$": f"log_dest file {log}\nuser {getpass.getuser()}",
    }
    for pattern, line in local.items():
        config, count = re.subn(pattern, line, config, flags=re.MULTILINE)
        assert count == 1, pattern
    path = tmp_path / "mosquitto.conf"
    path.write_text(config)
    broker = Mosquitto(port, path, log)
    broker.start()
    yield broker
    broker.stop()


async def test_the_shipped_broker_carries_an_allowlist_and_refuses_anything_larger(
    shipped_broker: Mosquitto,
) -> None:
    largest = b"a" * MAX_ALLOWLIST_BYTES
    oversize = b"b" * (BROKER_MESSAGE_SIZE_LIMIT + 1)
    async with (
        aiomqtt.Client("127.0.0.1", shipped_broker.port, identifier="watcher") as watcher,
        aiomqtt.Client("127.0.0.1", shipped_broker.port, identifier="sender") as sender,
    ):
        await watcher.subscribe("limit/#", qos=1)
        await sender.publish("limit/oversize", oversize, qos=1)
        await sender.publish("limit/largest", largest, qos=1)
        await sender.publish("limit/end", b"end", qos=1)
        received: dict[str, int] = {}
        async with asyncio.timeout(30):
            async for message in watcher.messages:
                received[str(message.topic)] = len(message.payload or b"")
                if message.topic.matches("limit/end"):
                    break

    # The broker keeps the order of one sender's messages: the oversize one was never passed on.
    assert received == {"limit/largest": MAX_ALLOWLIST_BYTES, "limit/end": 3}


def _peak_memory_kib(broker: Mosquitto) -> int:
    assert broker.process is not None
    status = Path(f"/proc/{broker.process.pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB$", status, re.MULTILINE)
    assert match, status
    return int(match[1])


def _remaining_length(n: int) -> bytes:
    encoded = bytearray()
    while True:
        n, digit = divmod(n, 128)
        encoded.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(encoded)


def _publish_raw(port: int, payload_size: int) -> int:
    """Publish ``payload_size`` bytes over a bare MQTT 3.1.1 socket; return how many were sent."""
    connect = b"\x00\x04MQTT\x04\x02\x00\x3c" + b"\x00\x05flood"
    topic = b"\x00\x0alimit/huge"
    chunk = b"c" * (1024 * 1024)
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"\x10" + _remaining_length(len(connect)) + connect)
        assert sock.recv(4) == b"\x20\x02\x00\x00"
        sock.sendall(b"\x30" + _remaining_length(len(topic) + payload_size) + topic)
        try:
            while sent < payload_size:
                sock.sendall(chunk)
                sent += len(chunk)
            sock.recv(1)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
    return sent


def test_the_shipped_broker_drops_a_huge_publish_before_holding_it(
    shipped_broker: Mosquitto,
) -> None:
    huge = 64 * 1024 * 1024

    sent = _publish_raw(shipped_broker.port, huge)

    assert sent < huge, "the broker read the whole 64 MB packet"
    # Without max_packet_size mosquitto holds the whole packet first (74 MB measured).
    assert _peak_memory_kib(shipped_broker) < 32 * 1024
    assert "disconnected due to oversize packet" in shipped_broker.log_text()
