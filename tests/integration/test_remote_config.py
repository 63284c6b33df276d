"""A config pushed through the API reaches a running door controller, retained, on a real
mosquitto, and what the device reports of it comes back to the API.

The running door controller takes the config from the broker itself, and its own status says
what became of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import msgspec
import pytest

from edge_agent.readers import SimulatedReader
from gateway.api import create_app
from gateway.service import Gateway
from gateway.store import Store
from tests.conftest import Mosquitto
from tests.factories import DOOR_DEVICE, FRONT_DOOR, OFFICE_DOOR, SITE, Space, make_space
from tests.integration.conftest import device_client, gateway_settings, running_door_controller
from varco import protocol
from varco.protocol import Channel, DeviceConfig

pytestmark = pytest.mark.integration

CONFIG_TOPIC = protocol.topic(SITE, DOOR_DEVICE, Channel.CONFIG)


@contextlib.asynccontextmanager
async def api(
    database: Path, mosquitto: Mosquitto, space: Space
) -> AsyncIterator[httpx.AsyncClient]:
    gateway = Gateway(gateway_settings(database, mosquitto))
    app = create_app(gateway)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    headers = {"Authorization": f"Bearer {space.admin_token}"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://varco", headers=headers) as http,
    ):
        assert gateway.ingest is not None
        await asyncio.wait_for(gateway.ingest.connected.wait(), timeout=5)
        yield http


async def next_config(client: aiomqtt.Client) -> tuple[bytes, bool]:
    async with asyncio.timeout(5):
        async for message in client.messages:
            if message.topic.value == CONFIG_TOPIC:
                assert isinstance(message.payload, bytes)
                return message.payload, message.retain
    raise AssertionError("no config")  # pragma: no cover


async def shown(http: httpx.AsyncClient, until: Any) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            config: dict[str, Any] = (await http.get(f"/devices/{DOOR_DEVICE}/overrides")).json()
            if until(config):
                return config
            await asyncio.sleep(0.05)


async def test_a_pushed_config_changes_a_running_doors_unlock_time_and_is_reported_applied(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    database = tmp_path / "varco.db"
    with Store(f"sqlite:///{database}") as store:
        space = make_space(store)
    body = {"log_level": "INFO", "doors": {FRONT_DOOR: {"unlock_seconds": 7.0}}}
    async with (
        api(database, mosquitto, space) as http,
        running_door_controller(mosquitto, tmp_path, database) as running,
    ):
        pushed = await http.put(f"/devices/{DOOR_DEVICE}/overrides", json=body)
        # A device that connects later gets it: it is retained.
        async with device_client(mosquitto) as device:
            await device.subscribe(CONFIG_TOPIC, qos=1)
            raw, retained = await next_config(device)
            after = await shown(http, lambda c: c["applied_version"] is not None)
        unlock = running.agent.doors[FRONT_DOOR].config.unlock_seconds

    sent = protocol.decode_as(DeviceConfig, raw)
    assert pushed.status_code == 200, pushed.text
    assert pushed.json()["published"] is True
    assert (retained, sent.version, sent.doors[FRONT_DOOR].unlock_seconds) == (
        True,
        pushed.json()["version"],
        7.0,
    )
    assert unlock == 7.0
    assert (after["applied"], after["applied_version"], after["error"]) == (
        True,
        sent.version,
        None,
    )
    assert after["doors"][FRONT_DOOR]["unlock_seconds"] == 7.0


async def test_a_refused_config_is_reported_and_the_door_keeps_deciding(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    database = tmp_path / "varco.db"
    with Store(f"sqlite:///{database}") as store:
        space = make_space(store)
    async with (
        api(database, mosquitto, space) as http,
        running_door_controller(mosquitto, tmp_path, database) as running,
        device_client(mosquitto) as device,
    ):
        await device.subscribe(CONFIG_TOPIC, qos=1)
        first = await http.put(
            f"/devices/{DOOR_DEVICE}/overrides",
            json={"doors": {FRONT_DOOR: {"unlock_seconds": 3.0}}},
        )
        await shown(http, lambda c: c["applied_version"] == first.json()["version"])
        not_its = await http.put(
            f"/devices/{DOOR_DEVICE}/overrides",
            json={"doors": {"meeting-door": {"unlock_seconds": 2.0}}},
        )
        # The device's file changed since: its office door is gone (the API does not know).
        remote = running.agent.remote
        remote.base = msgspec.structs.replace(
            remote.base, doors=[door for door in remote.base.doors if door.id != OFFICE_DOOR]
        )
        second = await http.put(
            f"/devices/{DOOR_DEVICE}/overrides",
            json={"doors": {OFFICE_DOOR: {"unlock_seconds": 4.0}}},
        )
        after = await shown(http, lambda c: c["error"] is not None)
        reader = running.agent.doors[FRONT_DOOR].reader
        assert isinstance(reader, SimulatedReader)
        reader.present(Space.ADA_BADGE)
        outcome = await asyncio.wait_for(running.outcomes.get(), timeout=5)

    assert (first.status_code, second.status_code) == (200, 200)
    assert not_its.status_code == 422
    assert "'meeting-door' is not driven by 'door-ctl-1'" in not_its.text
    assert after["applied"] is False
    assert after["applied_version"] == first.json()["version"]
    refused = second.json()["version"]
    assert (
        after["error"]
        == f"config {refused} refused: doors.{OFFICE_DOOR}: this device has no such door"
    )
    assert (outcome.granted, outcome.answered) == (True, True)
    assert running.agent.doors[FRONT_DOOR].config.unlock_seconds == 3.0
