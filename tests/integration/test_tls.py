"""TLS to the broker: the gateway and a door controller on mosquitto's TLS listener only."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest

from edge_agent.agent import Agent
from edge_agent.config import BrokerConfig, DoorConfig, EdgeConfig, Secret, TlsConfig
from edge_agent.door import Outcome
from edge_agent.readers import SimulatedReader
from gateway.service import Gateway
from gateway.store import Store
from tests.conftest import Mosquitto, free_port, mosquitto_config, need, wait_for_port
from tests.factories import DOOR_DEVICE, FRONT_DOOR, SITE, make_space
from tests.integration.conftest import DECISION_TIMEOUT, allowlist_key, gateway_settings
from varco import transport
from varco.protocol import Reason

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server_cert: Path
    server_key: Path


@dataclass
class TlsBroker:
    """mosquitto with a TLS listener (and a plain one on ``broker.port``, for the fixtures)."""

    broker: Mosquitto
    tls_port: int
    certificates: Certificates

    def address(self, tls: transport.Tls | None) -> transport.BrokerAddress:
        return transport.BrokerAddress(port=self.tls_port, tls=tls)


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    """A private CA and a certificate it signed for 127.0.0.1 and localhost."""
    need(shutil.which("openssl") is not None, "openssl is not installed (apt install openssl)")
    d = tmp_path / "pki"
    d.mkdir()
    subject = "/CN=Varco test CA"
    openssl(
        *["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", subject],
        *["-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt")],
    )
    (d / "server.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
    )
    openssl(
        *["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost"],
        *["-keyout", str(d / "server.key"), "-out", str(d / "server.csr")],
    )
    openssl(
        *["x509", "-req", "-in", str(d / "server.csr"), "-days", "2"],
        *["-CA", str(d / "ca.crt"), "-CAkey", str(d / "ca.key"), "-CAcreateserial"],
        *["-extfile", str(d / "server.ext"), "-out", str(d / "server.crt")],
    )
    return Certificates(d / "ca.crt", d / "server.crt", d / "server.key")


@pytest.fixture
def tls_broker(tmp_path: Path, certificates: Certificates) -> Iterator[TlsBroker]:
    need(shutil.which("mosquitto") is not None, "mosquitto is not installed")
    port, tls_port = free_port(), free_port()
    listener = "\n".join(
        [
            f"listener {tls_port} 127.0.0.1",
            f"cafile {certificates.ca}",
            f"certfile {certificates.server_cert}",
            f"keyfile {certificates.server_key}",
        ]
    )
    broker = Mosquitto(
        port, mosquitto_config(tmp_path, port, extra=listener), tmp_path / "mosquitto.log"
    )
    broker.start()
    wait_for_port(tls_port)
    yield TlsBroker(broker, tls_port, certificates)
    broker.stop()


async def test_a_client_trusting_the_ca_talks_over_tls_with_nagle_off(
    tls_broker: TlsBroker,
) -> None:
    tls = transport.Tls(ca_file=tls_broker.certificates.ca)
    client = transport.client(tls_broker.address(tls), identifier="tls-probe")

    async with client:
        sock = client._client.socket()
        assert isinstance(sock, ssl.SSLSocket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        await client.subscribe("probe/#", qos=1)
        await client.publish("probe/tls", b"over tls", qos=1)
        async with asyncio.timeout(5):
            async for message in client.messages:
                assert message.payload == b"over tls"
                break


async def test_a_broker_whose_certificate_is_not_trusted_is_refused(
    tls_broker: TlsBroker,
) -> None:
    client = transport.client(tls_broker.address(transport.Tls()), identifier="tls-doubter")

    with pytest.raises(aiomqtt.MqttError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify"):
        async with client:
            pass


async def test_a_tap_is_decided_with_gateway_and_door_on_tls_only(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    database = tmp_path / "varco.db"
    with Store(f"sqlite:///{database}") as store:
        space = make_space(store)
    settings = gateway_settings(database, tls_broker.broker)
    settings = settings.model_copy(
        update={"mqtt_port": tls_broker.tls_port, "mqtt_tls_ca_file": tls_broker.certificates.ca}
    )
    agent = Agent(
        EdgeConfig(
            device_id=DOOR_DEVICE,
            site=SITE,
            broker=BrokerConfig(
                port=tls_broker.tls_port, tls=TlsConfig(ca_file=tls_broker.certificates.ca)
            ),
            pin_factory="mock",
            state_dir=tmp_path / "edge",
            allowlist_key=Secret(allowlist_key(database)),
            doors=[
                DoorConfig(id=FRONT_DOOR, relay_pin=17, decision_timeout_seconds=DECISION_TIMEOUT)
            ],
        )
    )
    outcomes: asyncio.Queue[Outcome] = asyncio.Queue()
    async with Gateway(settings) as gateway:
        assert gateway.ingest is not None
        await asyncio.wait_for(gateway.ingest.connected.wait(), timeout=5)
        ready = asyncio.Event()
        task = asyncio.create_task(agent.run(ready))
        try:
            await asyncio.wait_for(ready.wait(), timeout=5)
            await asyncio.wait_for(agent.link.connected.wait(), timeout=5)
            agent.doors[FRONT_DOOR].outcomes.append(outcomes.put_nowait)
            reader = agent.doors[FRONT_DOOR].reader
            assert isinstance(reader, SimulatedReader)
            reader.present(space.ADA_BADGE)
            outcome = await asyncio.wait_for(outcomes.get(), timeout=5)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    assert outcome.granted
    assert outcome.reason == Reason.GRANTED
    assert outcome.answered  # by the gateway, over TLS, not decided offline
