"""``varco edge`` as a process: online while it runs, offline when stopped or killed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from gateway.service import Gateway
from gateway.store import Store
from gateway.store.models import Device
from tests.conftest import Mosquitto
from tests.factories import DOOR_DEVICE, FRONT_DOOR, SITE, Space, make_space
from tests.integration.conftest import allowlist_key, eventually, gateway_settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def gateway(mosquitto: Mosquitto, tmp_path: Path) -> AsyncIterator[Gateway]:
    database = tmp_path / "varco.db"
    with Store(f"sqlite:///{database}") as store:
        make_space(store)
    async with Gateway(gateway_settings(database, mosquitto)) as running:
        yield running


def edge_config(tmp_path: Path, broker: Mosquitto, key: str) -> Path:
    path = tmp_path / "edge.yaml"
    config = {
        "device_id": DOOR_DEVICE,
        "site": SITE,
        "broker": {"port": broker.port, "keepalive": 5},
        "pin_factory": "mock",
        "state_dir": str(tmp_path / "state"),
        "allowlist_key": key,
        "doors": [{"id": FRONT_DOOR, "relay_pin": 17, "contact_pin": 27}],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def device_state(gateway: Gateway) -> str | None:
    with gateway.store.session() as session:
        device = session.get(Device, DOOR_DEVICE)
        return device.state if device else None


def start_edge(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "varco", "edge", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.parametrize(
    ("how", "exit_code"),
    [(signal.SIGTERM, 0), (signal.SIGKILL, -signal.SIGKILL)],
    ids=["stopped", "killed"],
)
async def test_the_gateway_sees_the_device_go_offline(
    gateway: Gateway, mosquitto: Mosquitto, tmp_path: Path, how: signal.Signals, exit_code: int
) -> None:
    key = allowlist_key(Path(gateway.settings.database_url.removeprefix("sqlite:///")))
    edge = start_edge(edge_config(tmp_path, mosquitto, key))
    try:
        await eventually(lambda: device_state(gateway) == "online", within=20)
        edge.send_signal(how)
        # Stopped, it says so itself; killed, the broker publishes its last will.
        await eventually(lambda: device_state(gateway) == "offline", within=10)
        assert edge.wait(timeout=10) == exit_code
    finally:
        if edge.poll() is None:
            edge.kill()
            edge.wait()


async def test_a_maker_taps_without_hardware_and_the_gateway_decides(
    gateway: Gateway, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    key = allowlist_key(Path(gateway.settings.database_url.removeprefix("sqlite:///")))
    config = edge_config(tmp_path, mosquitto, key)
    edge = start_edge(config)
    try:
        await eventually(lambda: device_state(gateway) == "online", within=20)

        def tap(card: str) -> subprocess.CompletedProcess[str]:
            command = [sys.executable, "-m", "varco", "edge", "tap", card, "--config", str(config)]
            return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)

        granted, denied = await asyncio.gather(
            asyncio.to_thread(tap, Space.ADA_BADGE), asyncio.to_thread(tap, "DEADBEEF")
        )
        assert (granted.returncode, granted.stdout) == (
            0,
            f"{FRONT_DOOR}: {Space.ADA_BADGE} granted (granted)\n",
        )
        assert (denied.returncode, denied.stdout) == (
            0,
            f"{FRONT_DOOR}: DEADBEEF denied (unknown_badge)\n",
        )
        edge.send_signal(signal.SIGTERM)
        assert edge.wait(timeout=10) == 0
        assert edge.stderr is not None
        log = edge.stderr.read().decode()
        assert "relay on GPIO 17: unlocked for" in log  # the grant pulsed the relay
    finally:
        if edge.poll() is None:
            edge.kill()
            edge.wait()
