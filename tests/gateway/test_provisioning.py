"""Provisioning without a broker: ACLs, password records, revocation in the API (the
configuration file: test_device_config.py).

The broker side (dynamic security on a real mosquitto) is in tests/integration/test_dynsec.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from edge_agent.config import EdgeConfig, parse_config
from gateway.api import create_app
from gateway.provisioning import (
    device_acls,
    hash_password,
    new_credentials,
    role_name,
    verify_password,
)
from gateway.service import Gateway
from gateway.settings import Settings
from gateway.store import Store
from gateway.store.models import Device
from tests.conftest import free_port
from tests.factories import DOOR_DEVICE, SITE, Space, make_space

NEW_DEVICE = {"id": "desk-node-7", "site": SITE, "kind": "desk_node", "name": "Window desks"}
KEY = "ab" * 32


def answer(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json()


def test_a_device_role_allows_its_own_topics_and_nothing_else() -> None:
    assert role_name("door-ctl-1") == "varco-device-door-ctl-1"
    assert device_acls("door-ctl-1", "hq") == [
        {"acltype": "publishClientSend", "topic": "varco/v1/hq/door-ctl-1/tap", "allow": True},
        {"acltype": "publishClientSend", "topic": "varco/v1/hq/door-ctl-1/door", "allow": True},
        {"acltype": "publishClientSend", "topic": "varco/v1/hq/door-ctl-1/desk", "allow": True},
        {
            "acltype": "publishClientSend",
            "topic": "varco/v1/hq/door-ctl-1/status",
            "allow": True,
        },
        {
            "acltype": "subscribePattern",
            "topic": "varco/v1/hq/door-ctl-1/decision",
            "allow": True,
        },
        {
            "acltype": "subscribePattern",
            "topic": "varco/v1/hq/door-ctl-1/allowlist",
            "allow": True,
        },
        {
            "acltype": "subscribePattern",
            "topic": "varco/v1/hq/door-ctl-1/config",
            "allow": True,
        },
        {
            "acltype": "subscribePattern",
            "topic": "varco/v1/hq/door-ctl-1/command",
            "allow": True,
        },
        {
            "acltype": "subscribePattern",
            "topic": "varco/v1/hq/door-ctl-1/receipt",
            "allow": True,
        },
    ]


@pytest.mark.parametrize("device", ["#", "+", "door/1", "Door-1", ""])
def test_no_role_is_built_for_an_id_that_is_a_wildcard(device: str) -> None:
    with pytest.raises(ValueError, match="device id"):
        device_acls(device, "milano")


@pytest.mark.parametrize("site", ["#", "+", "a/b", ""])
def test_no_role_is_built_for_a_site_that_is_a_wildcard(site: str) -> None:
    # A "+" here would let the device speak under any site's segment.
    with pytest.raises(ValueError, match="site id"):
        device_acls("door-ctl-1", site)


def test_a_password_is_kept_only_as_a_salted_hash() -> None:
    password = new_credentials("door-ctl-1", "milano").password

    stored = hash_password(password)

    assert password not in stored
    assert stored.startswith("scrypt$")
    assert stored != hash_password(password)  # salted
    assert verify_password(password, stored)
    assert not verify_password(password + "x", stored)
    assert not verify_password(password, "scrypt$not$a$hash")
    assert not verify_password(password, "")


def test_each_device_gets_its_own_long_random_password() -> None:
    first, second = new_credentials("door-ctl-1", "milano"), new_credentials("door-ctl-1", "milano")

    assert first.username == "door-ctl-1"
    assert len(first.password) >= 32
    assert first.password != second.password
    assert first.password not in repr(first)


def parse(text: str) -> EdgeConfig:
    return parse_config(yaml.safe_load(text), source="config_yaml")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path / 'varco.db'}") as store:
        yield store


@pytest.fixture
def space(store: Store) -> Space:
    return make_space(store)


def api(store: Store, **settings: Any) -> TestClient:
    gateway = Gateway(Settings(database_url=store.url, **settings), ingest=False)
    # A crash comes back as the 500 a client gets, so "never a 5xx" is asserted, not raised.
    return TestClient(create_app(gateway), raise_server_exceptions=False)


def test_a_gateway_on_tls_writes_tls_into_a_new_devices_configuration(
    store: Store, space: Space
) -> None:
    admin = {"Authorization": f"Bearer {space.admin_token}"}
    settings = {"mqtt_tls": True, "device_broker_tls_ca_file": "/etc/varco/ca.crt"}
    with api(store, **settings) as client:
        created = answer(client.post("/devices", json=NEW_DEVICE, headers=admin), 201)

    assert yaml.safe_load(created["config_yaml"])["broker"]["tls"] == {
        "ca_file": "/etc/varco/ca.crt"
    }


def test_an_open_broker_gets_devices_without_credentials(store: Store, space: Space) -> None:
    admin = {"Authorization": f"Bearer {space.admin_token}"}
    settings = {"mqtt_host": "mosquitto", "device_broker_host": "broker.example.org"}
    with api(store, **settings) as client:
        created = answer(client.post("/devices", json=NEW_DEVICE, headers=admin), 201)

    config = parse(created["config_yaml"])
    assert (created["mqtt_username"], created["mqtt_password"], created["revoked"]) == (
        None,
        None,
        False,
    )
    assert (config.device_id, config.broker.host, config.broker.port) == (
        "desk-node-7",
        "broker.example.org",
        1883,
    )
    assert config.allowlist_key is not None
    assert config.allowlist_key.get_secret_value() == created["allowlist_key"]
    with store.session() as session:
        device = session.get(Device, "desk-node-7")
        assert device is not None
        assert (device.mqtt_password_hash, device.revoked_at) == (None, None)


def test_a_revoked_device_shows_as_revoked_and_is_revoked_once(store: Store, space: Space) -> None:
    admin = {"Authorization": f"Bearer {space.admin_token}"}
    with api(store) as client:
        before = answer(client.get(f"/devices/{DOOR_DEVICE}", headers=admin))
        revoked = answer(client.post(f"/devices/{DOOR_DEVICE}/revoke", headers=admin))
        again = client.post(f"/devices/{DOOR_DEVICE}/revoke", headers=admin)
        unknown = client.post("/devices/door-ctl-404/revoke", headers=admin)
        bad_id = client.post("/devices/Door-1/revoke", headers=admin)
        shown = answer(client.get(f"/devices/{DOOR_DEVICE}", headers=admin))
        listed = answer(client.get("/devices", headers=admin))["items"]

    assert (before["revoked"], before["revoked_at"]) == (False, None)
    assert revoked["revoked"] is True
    assert revoked["revoked_at"] is not None
    assert shown == revoked
    assert listed == [revoked]
    assert (again.status_code, again.json()["detail"]) == (
        409,
        f"device {DOOR_DEVICE!r} is already revoked",
    )
    assert (unknown.status_code, unknown.json()["detail"]) == (404, "no device 'door-ctl-404'")
    assert bad_id.status_code == 422


def test_a_broker_that_cannot_be_reached_changes_nothing(store: Store, space: Space) -> None:
    admin = {"Authorization": f"Bearer {space.admin_token}"}
    nobody = {"provisioning": "dynsec", "mqtt_port": free_port(), "mqtt_username": "gw"}
    with api(store, **nobody) as client:
        created = client.post("/devices", json=NEW_DEVICE, headers=admin)
        revoked = client.post(f"/devices/{DOOR_DEVICE}/revoke", headers=admin)
        shown = answer(client.get(f"/devices/{DOOR_DEVICE}", headers=admin))

    assert created.status_code == 503, created.text
    assert "cannot reach the broker at 127.0.0.1" in created.json()["detail"]
    assert revoked.status_code == 503, revoked.text
    assert shown["revoked"] is False
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Device)) == 1
