"""Devices provisioned through the API on a real mosquitto with the dynamic-security plugin.

The broker is set up by the script production uses (deploy/mosquitto/init-dynsec.sh): the admin
account, then the gateway's account with the varco-gateway role. The gateway then runs for real
(API and ingest) with that account, and each device gets its own account through the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
import yaml
from sqlalchemy import func, select

from edge_agent.config import EdgeConfig, parse_config
from gateway.api import create_app
from gateway.provisioning import Dynsec, role_name, verify_password
from gateway.service import Gateway
from gateway.settings import Settings
from gateway.store import Store
from gateway.store.models import Device, DeviceKind
from tests.conftest import Mosquitto, free_port, mosquitto_config, need
from tests.factories import DOOR_DEVICE, SITE, Space, make_space
from tests.integration.conftest import tap_for
from varco import protocol, transport
from varco.protocol import Channel, Decision, Tap
from varco.protocol.topics import DYNSEC_CONTROL, DYNSEC_RESPONSE

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
INIT = ROOT / "deploy" / "mosquitto" / "init-dynsec.sh"
PLUGINS = [
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
]
NEW = "door-ctl-7"
NEW_DEVICE = {"id": NEW, "site": SITE, "kind": "door_controller"}
# Nothing arrives within this long when the broker drops a message.
QUIET = 0.5


@dataclass
class DynsecBroker:
    broker: Mosquitto
    admin: transport.BrokerAddress
    gateway: transport.BrokerAddress
    environment: dict[str, str]

    def address(
        self, username: str | None = None, password: str | None = None
    ) -> transport.BrokerAddress:
        return transport.BrokerAddress(port=self.broker.port, username=username, password=password)


def plugin() -> str | None:
    return next((path for path in PLUGINS if Path(path).is_file()), None)


def init_dynsec(step: str, environment: dict[str, str]) -> None:
    result = subprocess.run(
        ["sh", str(INIT), step], env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"init-dynsec.sh {step}: {result.stdout}{result.stderr}"


def start_dynsec_broker(directory: Path, environment: dict[str, str]) -> Mosquitto:
    config = mosquitto_config(
        directory,
        int(environment["VARCO_MQTT_PORT"]),
        extra="\n".join(
            [
                # Later lines win: the plugin decides who may connect, nobody is anonymous.
                "allow_anonymous false",
                f"plugin {plugin()}",
                f"plugin_opt_config_file {environment['DYNSEC_FILE']}",
            ]
        ),
    )
    broker = Mosquitto(int(environment["VARCO_MQTT_PORT"]), config, directory / "mosquitto.log")
    broker.start()
    return broker


@pytest.fixture
def dynsec(tmp_path: Path) -> Iterator[DynsecBroker]:
    """A mosquitto with dynamic security, set up by deploy/mosquitto/init-dynsec.sh."""
    need(shutil.which("mosquitto") is not None, "mosquitto is not installed")
    need(shutil.which("mosquitto_ctrl") is not None, "mosquitto_ctrl is not installed")
    need(plugin() is not None, f"the dynamic-security plugin is not in any of {PLUGINS}")
    port = free_port()
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DYNSEC_FILE": str(tmp_path / "dynamic-security.json"),
        "DYNSEC_ADMIN_USERNAME": "admin",
        "DYNSEC_ADMIN_PASSWORD": "admin-password",
        "VARCO_MQTT_HOST": "127.0.0.1",
        "VARCO_MQTT_PORT": str(port),
        "VARCO_MQTT_USERNAME": "varco-gateway",
        "VARCO_MQTT_PASSWORD": "gateway-password",
    }
    init_dynsec("file", environment)
    broker = start_dynsec_broker(tmp_path, environment)
    try:
        init_dynsec("gateway", environment)
        yield DynsecBroker(
            broker,
            admin=transport.BrokerAddress(port=port, username="admin", password="admin-password"),
            gateway=transport.BrokerAddress(
                port=port, username="varco-gateway", password="gateway-password"
            ),
            environment=environment,
        )
    finally:
        broker.stop()


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "varco.db"


@pytest.fixture
def space(database: Path) -> Space:
    with Store(f"sqlite:///{database}") as store:
        return make_space(store)


def settings(database: Path, broker: transport.BrokerAddress, *, timeout: float = 2) -> Settings:
    return Settings(
        database_url=f"sqlite:///{database}",
        mqtt_port=broker.port,
        mqtt_username=broker.username,
        mqtt_password=broker.password,
        gateway_id="gateway-test",
        policy_refresh_seconds=3600,
        provisioning="dynsec",
        provisioning_timeout_seconds=timeout,
    )


@contextlib.asynccontextmanager
async def running_api(
    config: Settings, space: Space, *, ingest: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """Run the gateway and its API, and yield an HTTP client speaking as the admin."""
    gateway = Gateway(config, ingest=ingest)
    app = create_app(gateway)
    # A crash comes back as the 500 a client gets, so "never a 5xx" is asserted, not raised.
    transport_ = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    headers = {"Authorization": f"Bearer {space.admin_token}"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport_, base_url="http://varco", headers=headers) as http,
    ):
        if gateway.ingest is not None:
            await asyncio.wait_for(gateway.ingest.connected.wait(), timeout=5)
        yield http


def answer(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json()


@contextlib.asynccontextmanager
async def connected(
    broker: transport.BrokerAddress, identifier: str
) -> AsyncIterator[aiomqtt.Client]:
    async with transport.client(broker, identifier=identifier) as client:
        yield client


def as_device(config: EdgeConfig) -> transport.BrokerAddress:
    """Connect as the rendered configuration says, the way the edge agent does."""
    password = config.broker.password
    return transport.BrokerAddress(
        host=config.broker.host,
        port=config.broker.port,
        username=config.broker.username,
        password=password.get_secret_value() if password else None,
    )


def refused(granted: Any) -> list[bool]:
    return [code.is_failure for code in granted]


def payload(message: aiomqtt.Message) -> bytes:
    assert isinstance(message.payload, bytes)
    return message.payload


async def collect(client: aiomqtt.Client, within: float = QUIET) -> list[aiomqtt.Message]:
    messages: list[aiomqtt.Message] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            async for message in client.messages:
                messages.append(message)
    return messages


async def first_on(client: aiomqtt.Client, topic: str, within: float = 5) -> aiomqtt.Message:
    async with asyncio.timeout(within):
        async for message in client.messages:
            if message.topic.value == topic:
                return message
    raise AssertionError(f"nothing on {topic}")  # pragma: no cover - the loop ends by timeout


async def create(http: httpx.AsyncClient) -> tuple[dict[str, Any], EdgeConfig]:
    created = answer(await http.post("/devices", json=NEW_DEVICE), 201)
    config = parse_config(yaml.safe_load(created["config_yaml"]), source="config_yaml")
    return created, config


async def test_a_provisioned_device_reaches_its_own_topics_and_no_others(
    dynsec: DynsecBroker, database: Path, space: Space
) -> None:
    own_tap = protocol.topic(SITE, NEW, Channel.TAP)
    others_tap = protocol.topic(SITE, DOOR_DEVICE, Channel.TAP)
    # Its own device segment under another site's: the reports would believe it.
    other_site_tap = protocol.topic("elsewhere", NEW, Channel.TAP)
    async with (
        running_api(settings(database, dynsec.gateway), space) as http,
        connected(dynsec.gateway, "watcher") as watcher,
    ):
        await watcher.subscribe(protocol.subscription("+"), qos=1)
        created, config = await create(http)
        async with connected(as_device(config), NEW) as device:
            own = await device.subscribe(protocol.topic(SITE, NEW, Channel.DECISION), qos=1)
            everything = await device.subscribe("#", qos=1)
            others = await device.subscribe(
                protocol.topic(SITE, DOOR_DEVICE, Channel.DECISION), qos=1
            )
            control = await device.subscribe(DYNSEC_RESPONSE, qos=1)
            await device.publish(
                own_tap, protocol.encode(tap_for("04A1B2C3D4", "tap-own-1")), qos=1
            )
            tap = await first_on(watcher, own_tap)
            decision = await first_on(device, protocol.topic(SITE, NEW, Channel.DECISION))
            await device.publish(
                others_tap, protocol.encode(tap_for("04A1B2C3D4", "tap-other-1")), qos=1
            )
            await device.publish(
                other_site_tap, protocol.encode(tap_for("04A1B2C3D4", "tap-site-1")), qos=1
            )
            await device.publish(DYNSEC_CONTROL, b'{"commands": []}', qos=1)
            after = await collect(watcher)

    assert (created["mqtt_username"], config.broker.username) == (NEW, NEW)
    assert (config.device_id, config.site, config.broker.port) == (NEW, SITE, dynsec.broker.port)
    assert refused(own) == [False]
    assert (refused(everything), refused(others), refused(control)) == ([True], [True], [True])
    assert protocol.decode_as(Tap, payload(tap)).event_id == "tap-own-1"
    assert protocol.decode_as(Decision, payload(decision)).event_id == "tap-own-1"
    assert [m.topic.value for m in after if m.topic.value.endswith("/tap")] == []


async def test_the_password_is_shown_once_and_kept_hashed(
    dynsec: DynsecBroker, database: Path, space: Space
) -> None:
    async with running_api(settings(database, dynsec.gateway), space, ingest=False) as http:
        created, _ = await create(http)
        shown = (await http.get(f"/devices/{NEW}")).text
        listed = (await http.get("/devices")).text
    password = created["mqtt_password"]

    with Store(f"sqlite:///{database}") as store, store.session() as session:
        device = session.get(Device, NEW)
        assert device is not None
        row = {c.key: getattr(device, c.key) for c in Device.__table__.columns}
    files = b"".join(path.read_bytes() for path in database.parent.glob("varco.db*"))

    assert len(password) >= 32
    assert [key for key, value in row.items() if password in str(value)] == []
    assert verify_password(password, row["mqtt_password_hash"])
    assert password.encode() not in files
    assert password not in shown
    assert password not in listed
    assert created["allowlist_key"] not in shown + listed


async def test_a_revoked_device_is_cut_off_and_cannot_come_back(
    dynsec: DynsecBroker, database: Path, space: Space
) -> None:
    async with running_api(settings(database, dynsec.gateway), space, ingest=False) as http:
        _, config = await create(http)
        async with connected(as_device(config), NEW) as device:
            await device.subscribe(protocol.topic(SITE, NEW, Channel.CONFIG), qos=1)
            revoked = answer(await http.post(f"/devices/{NEW}/revoke"))
            with pytest.raises(aiomqtt.MqttError, match="Disconnected"):
                await collect(device, within=5)
        with pytest.raises(aiomqtt.MqttCodeError, match="Not authorized"):
            async with connected(as_device(config), NEW):
                pass  # pragma: no cover - the broker refuses the connection
        again = await http.post(f"/devices/{NEW}/revoke")
        shown = answer(await http.get(f"/devices/{NEW}"))

    assert revoked["revoked"] is True
    assert shown == revoked
    assert again.status_code == 409


async def test_a_device_id_that_the_broker_already_knows_is_refused_and_left_alone(
    dynsec: DynsecBroker, database: Path, space: Space
) -> None:
    async with running_api(settings(database, dynsec.gateway), space, ingest=False) as http:
        # "admin" and "varco-gateway" are valid device ids, and broker accounts already.
        taken = [
            await http.post("/devices", json={**NEW_DEVICE, "id": name})
            for name in ("admin", "varco-gateway")
        ]
        listed = answer(await http.get("/devices"))
    async with Dynsec(dynsec.admin, identifier="checker") as admin:
        roles = await admin.run(
            {"command": "getRole", "rolename": role_name("admin")},
            {"command": "getRole", "rolename": role_name("varco-gateway")},
        )
    async with connected(dynsec.gateway, "gateway-still-works") as gateway:
        await gateway.subscribe(protocol.subscription("+"), qos=1)

    assert [(r.status_code, "already exists" in r.json()["detail"]) for r in taken] == [
        (409, True),
        (409, True),
    ]
    assert [item["id"] for item in listed["items"]] == [DOOR_DEVICE]
    assert [r.error for r in roles] == ["Role not found", "Role not found"]


async def test_revoking_a_device_made_without_provisioning_leaves_broker_accounts_alone(
    dynsec: DynsecBroker, database: Path, space: Space
) -> None:
    # Made while VARCO_PROVISIONING was none, with the name of the broker's admin account.
    with Store(f"sqlite:///{database}") as store, store.session() as session:
        session.add(Device(id="admin", site=SITE, kind=DeviceKind.DOOR_CONTROLLER))
    async with running_api(settings(database, dynsec.gateway), space, ingest=False) as http:
        revoked = [answer(await http.post(f"/devices/{d}/revoke")) for d in ("admin", DOOR_DEVICE)]
    async with Dynsec(dynsec.admin, identifier="admin-still-works") as admin:
        [client] = await admin.run({"command": "getClient", "username": "admin"})

    assert [device["revoked"] for device in revoked] == [True, True]
    assert client.ok, client.error
    assert client.data["client"].get("disabled", False) is False


@pytest.mark.parametrize(
    ("username", "password", "says"),
    [
        ("outsider", "outsider-password", "give that account the varco-gateway role"),
        ("varco-gateway", "a-wrong-password", "refused the gateway's account 'varco-gateway'"),
    ],
    ids=["no-gateway-role", "wrong-password"],
)
async def test_a_broker_that_refuses_the_gateway_gets_a_502_and_no_device(
    dynsec: DynsecBroker, database: Path, space: Space, username: str, password: str, says: str
) -> None:
    async with Dynsec(dynsec.admin, identifier="setup") as admin:
        [made] = await admin.run(
            {"command": "createClient", "username": "outsider", "password": "outsider-password"}
        )
    assert made.ok, made.error
    account = replace(dynsec.gateway, username=username, password=password)

    async with running_api(settings(database, account), space, ingest=False) as http:
        response = await http.post("/devices", json=NEW_DEVICE)
        missing = await http.get(f"/devices/{NEW}")

    assert response.status_code == 502, response.text
    assert says in response.json()["detail"]
    assert missing.status_code == 404


async def test_a_broker_that_is_down_gets_a_503_and_no_device(
    dynsec: DynsecBroker, database: Path, space: Space
) -> None:
    async with running_api(settings(database, dynsec.gateway), space, ingest=False) as http:
        dynsec.broker.stop()
        created = await http.post("/devices", json=NEW_DEVICE)
        revoked = await http.post(f"/devices/{DOOR_DEVICE}/revoke")
        shown = answer(await http.get(f"/devices/{DOOR_DEVICE}"))

    assert created.status_code == 503, created.text
    assert "cannot reach the broker" in created.json()["detail"]
    assert revoked.status_code == 503, revoked.text
    assert shown["revoked"] is False
    with Store(f"sqlite:///{database}") as store, store.session() as session:
        assert session.scalar(select(func.count()).select_from(Device)) == 1


async def test_a_broker_without_the_plugin_gets_a_503_and_no_device(
    mosquitto: Mosquitto, database: Path, space: Space
) -> None:
    anonymous = transport.BrokerAddress(port=mosquitto.port)
    config = settings(database, anonymous, timeout=0.3)
    async with running_api(config, space, ingest=False) as http:
        response = await http.post("/devices", json=NEW_DEVICE)
        missing = await http.get(f"/devices/{NEW}")

    assert response.status_code == 503, response.text
    assert "did not answer" in response.json()["detail"]
    assert missing.status_code == 404


async def test_the_gateway_role_allows_shared_subscriptions_and_its_own_channels(
    dynsec: DynsecBroker,
) -> None:
    async with connected(dynsec.gateway, "gateway-probe") as gateway:
        shared = [
            await gateway.subscribe(protocol.shared("varco-gateways", filter_), qos=1)
            for filter_ in protocol.gateway_subscriptions()
        ]
        everything = await gateway.subscribe("#", qos=1)

    assert [refused(granted) for granted in shared] == [[False]] * 4
    assert refused(everything) == [True]


async def test_each_dynsec_connection_gets_its_own_answers(dynsec: DynsecBroker) -> None:
    # The plugin answers every admin on one topic: each must pick out its own.
    async with (
        Dynsec(dynsec.admin, identifier="one") as one,
        Dynsec(dynsec.gateway, identifier="two") as two,
    ):
        first, second = await asyncio.gather(
            one.run({"command": "getRole", "rolename": "varco-gateway"}),
            two.run(
                {"command": "getClient", "username": "varco-gateway"},
                {"command": "getRole", "rolename": "nobody"},
            ),
        )

    assert [(a.command, a.error) for a in first] == [("getRole", None)]
    assert first[0].data["role"]["rolename"] == "varco-gateway"
    assert [(a.command, a.error) for a in second] == [
        ("getClient", None),
        ("getRole", "Role not found"),
    ]
    assert second[0].data["client"]["username"] == "varco-gateway"


async def test_anonymous_clients_are_refused(dynsec: DynsecBroker) -> None:
    with pytest.raises(aiomqtt.MqttCodeError, match="Not authorized"):
        async with connected(dynsec.address(), "anonymous"):
            pass  # pragma: no cover - the broker refuses the connection


def test_the_shipped_dynsec_config_runs_with_the_plugin(tmp_path: Path) -> None:
    need(shutil.which("mosquitto") is not None, "mosquitto is not installed")
    need(shutil.which("mosquitto_ctrl") is not None, "mosquitto_ctrl is not installed")
    need(plugin() is not None, f"the dynamic-security plugin is not in any of {PLUGINS}")
    port = free_port()
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DYNSEC_FILE": str(tmp_path / "dynamic-security.json"),
        "DYNSEC_ADMIN_PASSWORD": "admin-password",
    }
    init_dynsec("file", environment)
    shipped = (ROOT / "deploy" / "mosquitto" / "mosquitto-dynsec.conf").read_text()
    # Only the paths and the port differ from the container's.
    local = {
        r"^plugin .*$": f"plugin {plugin()}",
        r"^plugin_opt_config_file .*$": f"plugin_opt_config_file {environment['DYNSEC_FILE']}",
        r"^persistence_location .*$": f"persistence_location {tmp_path}/",
        r"^listener 1883 0\.0\.0\.0$": f"listener {port} 127.0.0.1",
        # Root drops to the mosquitto user, which may not write here; stay who we are.
        r"^log_dest stdout$": f"log_dest stdout\nuser {getpass.getuser()}",
    }
    for pattern, line in local.items():
        shipped, count = re.subn(pattern, line, shipped, flags=re.MULTILINE)
        assert count == 1, pattern
    config = tmp_path / "mosquitto.conf"
    config.write_text(shipped)
    broker = Mosquitto(port, config, tmp_path / "mosquitto.log")
    broker.start()
    try:
        result = subprocess.run(
            [
                "mosquitto_ctrl",
                *("-p", str(port), "-u", "admin", "-P", "admin-password"),
                *("dynsec", "getDefaultACLAccess"),
            ],
            capture_output=True,
            text=True,
            timeout=10,
        )
    finally:
        broker.stop()

    assert re.search(r"^publishClientSend\s*: deny$", result.stdout, re.MULTILINE), result
    assert re.search(r"^subscribe\s*: deny$", result.stdout, re.MULTILINE), result
