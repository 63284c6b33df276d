"""Every Varco MQTT client turns Nagle's algorithm off on its socket."""

from __future__ import annotations

import asyncio
import os
import signal
import socket

from tests.conftest import Mosquitto
from varco import transport


async def test_client_sockets_have_tcp_nodelay(mosquitto: Mosquitto) -> None:
    client = transport.client(transport.BrokerAddress(port=mosquitto.port), identifier="probe")

    async with client:
        sock = client._client.socket()  # the paho socket under aiomqtt
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_the_test_broker_turns_nagle_off_too(mosquitto: Mosquitto) -> None:
    assert "set_tcp_nodelay true" in mosquitto.config.read_text().splitlines()


async def test_a_stopped_session_ends_though_the_broker_never_sees_it_leave(
    mosquitto: Mosquitto,
) -> None:
    assert mosquitto.process is not None
    client = transport.client(transport.BrokerAddress(port=mosquitto.port), identifier="stuck")
    inside = asyncio.Event()

    async def session() -> None:
        async with transport.connection(client):
            inside.set()
            await asyncio.Event().wait()  # until stopped

    task = asyncio.create_task(session())
    await asyncio.wait_for(inside.wait(), 5)
    os.kill(mosquitto.process.pid, signal.SIGSTOP)  # the broker reads nothing more
    try:
        # Megabytes the frozen broker will never read: our DISCONNECT queues behind them.
        stuffing = asyncio.create_task(client.publish("stuffing", b"x" * 8_000_000, timeout=30))
        await asyncio.sleep(0.3)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=5)
        stuffing.cancel()
    finally:
        os.kill(mosquitto.process.pid, signal.SIGCONT)

    # Stopped, as asked, within seconds; not an MqttError after aiomqtt's 10 s timeout.
    assert task in done
    assert task.cancelled()
