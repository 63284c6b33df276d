"""A device's configuration file from the gateway, read back by the edge's own loader."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from edge_agent.config import (
    DEFAULT_STATE_DIR,
    EdgeConfig,
    Mfrc522ReaderConfig,
    PressureMatDeskConfig,
    load_config,
)
from gateway.api import create_app
from gateway.device_config import (
    DESK_PINS,
    HEADER_PIN,
    STANDARD_DOORS,
    Broker,
    DoorSpec,
    WiringError,
    render_config,
)
from gateway.service import Gateway
from gateway.settings import Settings
from gateway.store import Store
from gateway.store.models import Device, Door
from tests.factories import DOOR_DEVICE, FRONT_DOOR, OFFICE_DOOR, SITE, Space, add_desk_node
from tests.factories import make_space as make_test_space

KEY = "ab" * 32
BROKER = Broker(host="broker.example.org", port=8883)


def load(text: str, tmp_path: Path) -> EdgeConfig:
    """Install the file as a maker would and read it with the agent's loader."""
    path = tmp_path / "edge.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def render(
    doors: tuple[DoorSpec, ...] = (), desks: tuple[str, ...] = (), broker: Broker = BROKER
) -> str:
    return render_config(
        device_id="door-ctl-7",
        site=SITE,
        allowlist_key=KEY,
        broker=broker,
        doors=doors,
        desks=desks,
    )


def test_a_new_devices_file_has_its_account_and_key(tmp_path: Path) -> None:
    broker = Broker("broker.example.org", 8883, username="door-ctl-7", password="s3cret-pa55word")
    config = load(render(broker=broker), tmp_path)

    assert (config.device_id, config.site, config.pin_factory) == ("door-ctl-7", SITE, "default")
    assert (config.broker.host, config.broker.port, config.broker.username) == (
        "broker.example.org",
        8883,
        "door-ctl-7",
    )
    assert config.broker.password is not None
    assert config.broker.password.get_secret_value() == "s3cret-pa55word"
    assert config.allowlist_key is not None
    assert config.allowlist_key.get_secret_value() == KEY
    assert (config.doors, config.desks, config.state_dir) == ([], [], DEFAULT_STATE_DIR)


def test_without_the_password_the_file_says_where_it_goes(tmp_path: Path) -> None:
    text = render(broker=Broker("broker.example.org", 1883, username="door-ctl-7"))
    config = load(text, tmp_path)

    assert config.broker.username == "door-ctl-7"
    assert config.broker.password is None
    assert "  # password: the one shown once when the device was created\n" in text


def test_a_device_of_a_tls_broker_gets_tls_with_the_ca_path_on_the_pi(tmp_path: Path) -> None:
    system_cas = load(render(broker=Broker("b.example.org", 8883, tls=True)), tmp_path)
    ca = Broker("b.example.org", 8883, tls=True, tls_ca_file="/etc/ssl/certs/ca-certificates.crt")
    private_ca = load(render(broker=ca), tmp_path)

    assert system_cas.broker.tls is not None
    assert system_cas.broker.tls.ca_file is None
    assert private_ca.broker.tls is not None
    assert private_ca.broker.tls.ca_file == Path("/etc/ssl/certs/ca-certificates.crt")
    assert load(render(), tmp_path).broker.tls is None


def test_a_host_that_yaml_would_misread_is_kept_as_it_is(tmp_path: Path) -> None:
    odd = Broker(host="10.0.0.7 # not a comment: yes", port=1883)

    assert load(render(broker=odd), tmp_path).broker.host == odd.host


def test_two_doors_and_desks_get_the_standard_wiring(tmp_path: Path) -> None:
    doors = (DoorSpec("front-door", 5.0), DoorSpec("back-door", 3.5))
    config = load(render(doors, desks=("desk-1", "desk-2", "desk-3")), tmp_path)

    for door, spec, pins in zip(config.doors, doors, STANDARD_DOORS, strict=True):
        assert (door.id, door.unlock_seconds) == (spec.id, spec.unlock_seconds)
        assert door.reader == Mfrc522ReaderConfig(spi_device=pins.spi_device, reset_pin=pins.reset)
        assert (door.relay_pin, door.contact_pin, door.exit_button_pin) == (
            pins.relay,
            pins.contact,
            pins.exit_button,
        )
        assert (door.green_led_pin, door.red_led_pin, door.buzzer_pin) == (
            pins.green_led,
            pins.red_led,
            pins.buzzer,
        )
    used = {pin for pins in STANDARD_DOORS for pin in pins.pins()}
    assert [desk.id for desk in config.desks] == ["desk-1", "desk-2", "desk-3"]
    mats = [desk for desk in config.desks if isinstance(desk, PressureMatDeskConfig)]
    assert [desk.pin for desk in mats] == [p for p in DESK_PINS if p not in used][:3]


def test_every_pin_comment_names_its_header_pin() -> None:
    text = render((DoorSpec("front-door", 5.0), DoorSpec("back-door", 5.0)), desks=("d1", "d2"))
    said = re.findall(r"BCM (\d+), header pin (\d+)", text)

    assert len(said) == 2 * 8 + 2
    assert all(HEADER_PIN[int(bcm)] == int(header) for bcm, header in said)


def test_the_standard_wiring_never_takes_spi_uart_eeprom_or_i2c_pins() -> None:
    reserved = {0, 1, 2, 3, 7, 8, 9, 10, 11, 14, 15}
    door_pins = [pin for pins in STANDARD_DOORS for pin in pins.pins()]

    assert not reserved & {*door_pins, *DESK_PINS}
    assert len(door_pins) == len(set(door_pins))
    assert len(DESK_PINS) == len(set(DESK_PINS))


def test_a_device_the_standard_wiring_cannot_carry_is_refused() -> None:
    with pytest.raises(WiringError, match="drives 3 doors; the standard wiring has pins for 2"):
        render(tuple(DoorSpec(f"door-{n}", 5.0) for n in range(3)))
    free = len(DESK_PINS) - 7  # one door takes 7 of them
    desks = tuple(f"desk-{n}" for n in range(free + 1))
    with pytest.raises(WiringError, match=f"has {free + 1} desks; .* pins for {free} beside"):
        render((DoorSpec("front-door", 5.0),), desks=desks)


# Through the API


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path / 'varco.db'}") as store:
        yield store


@pytest.fixture
def space(store: Store) -> Space:
    return make_test_space(store)


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    settings = Settings(database_url=store.url, device_broker_host="broker.example.org")
    gateway = Gateway(settings, ingest=False)
    with TestClient(create_app(gateway), raise_server_exceptions=False) as client:
        yield client


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_admin_gets_the_devices_whole_file_at_any_time(
    client: TestClient, store: Store, space: Space, tmp_path: Path
) -> None:
    response = client.get(f"/devices/{DOOR_DEVICE}/config", headers=headers(space.admin_token))

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/yaml")
    config = load(response.text, tmp_path)
    with store.session() as session:
        device = session.get(Device, DOOR_DEVICE)
        assert device is not None
        key = device.allowlist_key
    assert (config.device_id, config.site, config.broker.host) == (
        DOOR_DEVICE,
        SITE,
        "broker.example.org",
    )
    assert config.allowlist_key is not None
    assert config.allowlist_key.get_secret_value() == key
    assert [door.id for door in config.doors] == sorted([FRONT_DOOR, OFFICE_DOOR])
    assert (config.broker.username, config.broker.password) == (None, None)  # an open broker


def test_a_provisioned_device_names_its_account_but_not_its_password(
    client: TestClient, store: Store, space: Space, tmp_path: Path
) -> None:
    with store.session() as session:
        device = session.get(Device, DOOR_DEVICE)
        assert device is not None
        device.mqtt_password_hash = "scrypt$16384$8$1$c2FsdA==$aGFzaA=="

    text = client.get(f"/devices/{DOOR_DEVICE}/config", headers=headers(space.admin_token)).text

    config = load(text, tmp_path)
    assert (config.broker.username, config.broker.password) == (DOOR_DEVICE, None)
    assert "scrypt" not in text


def test_a_desk_nodes_file_has_its_desks(
    client: TestClient, store: Store, space: Space, tmp_path: Path
) -> None:
    add_desk_node(store, {"desk-1": "lobby", "desk-2": "lobby"}, device="desk-node-1")

    response = client.get("/devices/desk-node-1/config", headers=headers(space.admin_token))

    config = load(response.text, tmp_path)
    assert (config.doors, [desk.id for desk in config.desks]) == ([], ["desk-1", "desk-2"])


@pytest.mark.parametrize(
    ("device", "token", "status", "detail"),
    [
        (DOOR_DEVICE, "viewer", 403, None),
        (DOOR_DEVICE, None, 401, None),
        ("door-ctl-404", "admin", 404, "no device 'door-ctl-404'"),
        ("Door_1", "admin", 422, None),
    ],
)
def test_the_file_is_for_admins_of_devices_that_exist(
    client: TestClient, space: Space, device: str, token: str | None, status: int, detail: Any
) -> None:
    tokens = {"admin": space.admin_token, "viewer": space.viewer_token}
    response = client.get(
        f"/devices/{device}/config", headers=headers(tokens[token]) if token else {}
    )

    assert response.status_code == status, response.text
    if detail is not None:
        assert response.json()["detail"] == detail


def test_a_revoked_device_or_one_with_too_many_doors_gets_no_file(
    client: TestClient, store: Store, space: Space
) -> None:
    admin = headers(space.admin_token)
    with store.session() as session:
        session.add(Door(id="third-door", name="Third", zone_id="lobby", device_id=DOOR_DEVICE))
    too_many = client.get(f"/devices/{DOOR_DEVICE}/config", headers=admin)
    client.post(f"/devices/{DOOR_DEVICE}/revoke", headers=admin)
    revoked = client.get(f"/devices/{DOOR_DEVICE}/config", headers=admin)

    assert too_many.status_code == 409
    assert "drives 3 doors; the standard wiring has pins for 2" in too_many.json()["detail"]
    assert (revoked.status_code, revoked.json()["detail"]) == (
        409,
        f"device {DOOR_DEVICE!r} is revoked",
    )
