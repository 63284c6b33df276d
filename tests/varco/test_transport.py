"""Every Varco MQTT client turns Nagle's algorithm off on its socket."""

from __future__ import annotations

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
