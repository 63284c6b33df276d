"""``varco broker init`` on this machine: the configuration it writes runs a real mosquitto.

As root (as here and in CI) mosquitto drops to the user ``mosquitto``: the files the command
writes must be that user's, in directories that user can enter, or the broker cannot read its
accounts. The tests work in a directory under /tmp that user can enter, as an admin's
/etc/mosquitto is; pytest's own tmp_path (mode 0700, root's) is one it cannot, which the
command must say.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.settings import Settings
from gateway.store import Store
from tests.conftest import Mosquitto, free_port, need
from tests.factories import SITE, Space, make_space
from tests.integration.conftest import tap_for
from tests.integration.test_dynsec import (
    answer,
    as_device,
    connected,
    first_on,
    plugin,
    running_api,
)
from varco import protocol
from varco.cli import main
from varco.protocol import Channel, Decision

pytestmark = pytest.mark.integration

DEVICE = {"id": "door-ctl-9", "site": SITE, "kind": "door_controller"}


@pytest.fixture
def etc() -> Iterator[Path]:
    """A folder as /etc/mosquitto is: root's, and open for the broker's user to enter."""
    need(shutil.which("mosquitto") is not None, "mosquitto is not installed")
    need(plugin() is not None, "mosquitto's dynamic-security plugin is not installed")
    need(os.geteuid() == 0, "the broker drops to its own user only when started as root")
    folder = Path(tempfile.mkdtemp(prefix="varco-broker-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def init(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["broker", "init", *args])
    out, err = capsys.readouterr()
    return code, out, err


def read_env(path: Path) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in path.read_text().splitlines() if "=" in line]
    return {key: value for key, value in pairs if not key.startswith("#")}


def running_as(process: Mosquitto) -> str:
    assert process.process is not None
    status = Path(f"/proc/{process.process.pid}/status").read_text()
    uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[2])
    return pwd.getpwuid(uid).pw_name


async def test_the_written_broker_runs_as_mosquitto_and_a_provisioned_device_connects(
    etc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    config, log = etc / "mosquitto.conf", etc / "mosquitto.log"
    code, out, err = init(
        capsys,
        f"--config={config}",
        f"--port={port}",
        "--bind=127.0.0.1",
        "--device-host=127.0.0.1",
        f"--log-file={log}",
    )
    assert (code, err) == (0, "")
    env = read_env(etc / "varco-gateway.env")
    dynsec_file = etc / "data" / "dynamic-security.json"
    info = dynsec_file.stat()
    broker = Mosquitto(port, config, log)
    broker.start()
    try:
        database = tmp_path / "varco.db"
        with Store(f"sqlite:///{database}") as store:
            space: Space = make_space(store)
        settings = Settings(
            database_url=f"sqlite:///{database}",
            gateway_id="gateway-test",
            policy_refresh_seconds=3600,
            **{key.removeprefix("VARCO_").lower(): value for key, value in env.items()},  # type: ignore[arg-type]
        )
        async with running_api(settings, space) as http:
            created = answer(await http.post("/devices", json=DEVICE), 201)
            import yaml  # noqa: PLC0415

            from edge_agent.config import parse_config  # noqa: PLC0415

            device_config = parse_config(yaml.safe_load(created["config_yaml"]), source="api")
            own = protocol.topic(SITE, DEVICE["id"], Channel.DECISION)
            async with connected(as_device(device_config), DEVICE["id"]) as device:
                await device.subscribe(own, qos=1)
                await device.publish(
                    protocol.topic(SITE, DEVICE["id"], Channel.TAP),
                    protocol.encode(tap_for("04A1B2C3D4", "tap-init-1")),
                    qos=1,
                )
                decision = await first_on(device, own)
        user = running_as(broker)
    finally:
        broker.stop()

    assert "Next:" in out
    assert f"mosquitto -c {config}" in out
    assert user == "mosquitto"
    assert (pwd.getpwuid(info.st_uid).pw_name, stat.S_IMODE(info.st_mode)) == ("mosquitto", 0o600)
    assert env["VARCO_PROVISIONING"] == "dynsec"
    assert (env["VARCO_DEVICE_BROKER_HOST"], env["VARCO_DEVICE_BROKER_PORT"]) == (
        "127.0.0.1",
        str(port),
    )
    assert device_config.broker.username == DEVICE["id"]
    assert isinstance(decision.payload, bytes)
    assert protocol.decode_as(Decision, decision.payload).event_id == "tap-init-1"
    assert "Error" not in broker.log_text()


def test_a_folder_the_broker_user_cannot_enter_is_named(
    etc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # pytest's tmp_path lies under /tmp/pytest-of-root, mode 0700: mosquitto cannot enter it.
    closed = tmp_path.parent.parent
    code, _out, err = init(capsys, f"--config={etc / 'mosquitto.conf'}", f"--data-dir={tmp_path}")

    assert code == 1
    assert f"mosquitto runs as mosquitto, and cannot enter {closed}" in err
    assert "mode 0700, owner root" in err
    assert not (etc / "mosquitto.conf").exists()


def test_a_key_the_broker_user_cannot_read_is_named(
    etc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, cert = etc / "broker.key", etc / "broker.crt"
    key.write_text("not read\n")
    cert.write_text("not read\n")
    key.chmod(0o600)
    code, _, err = init(
        capsys, f"--config={etc / 'mosquitto.conf'}", f"--tls-cert={cert}", f"--tls-key={key}"
    )

    assert code == 1
    assert f"--tls-key: mosquitto runs as mosquitto, and cannot read {key}" in err
    assert "chown mosquitto" in err


def test_a_broker_set_up_already_is_left_alone(
    etc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = init(capsys, f"--config={etc / 'mosquitto.conf'}")
    before = (etc / "data" / "dynamic-security.json").read_bytes()
    second = init(capsys, f"--config={etc / 'mosquitto.conf'}")

    assert first[0] == 0
    assert second[0] == 1
    assert "exists: this broker is set up already" in second[2]
    assert (etc / "data" / "dynamic-security.json").read_bytes() == before


def test_on_debian_a_snippet_goes_beside_the_main_configuration(
    etc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Debian's main file, with its own persistence and log, including conf.d.
    data, conf_d = etc / "lib", etc / "conf.d"
    conf_d.mkdir()
    data.mkdir()
    os.chown(data, pwd.getpwnam("mosquitto").pw_uid, pwd.getpwnam("mosquitto").pw_gid)
    port = free_port()
    main_config = etc / "mosquitto.conf"
    log = etc / "mosquitto.log"
    main_config.write_text(
        f"persistence true\npersistence_location {data}/\nlog_dest file {log}\n"
        f"include_dir {conf_d}\n"
    )
    code, out, err = init(capsys, f"--main-config={main_config}", f"--port={port}")
    snippet = (conf_d / "varco.conf").read_text()
    broker = Mosquitto(port, main_config, log)
    log.touch()
    shutil.chown(log, "mosquitto")
    broker.start()
    broker.stop()

    assert (code, err) == (0, "")
    assert "persistence_location" not in snippet
    assert "log_dest" not in snippet
    assert f"plugin_opt_config_file {data}/dynamic-security.json" in snippet
    assert "sudo systemctl restart mosquitto" in out
    assert "Error" not in broker.log_text()


def test_a_main_configuration_that_contradicts_the_setup_is_named(
    etc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf_d = etc / "conf.d"
    conf_d.mkdir()
    main_config = etc / "mosquitto.conf"
    main_config.write_text(f"listener 1883\nallow_anonymous true\ninclude_dir {conf_d}\n")
    code, _, err = init(capsys, f"--main-config={main_config}")

    assert code == 1
    assert f"{main_config}:2 says 'allow_anonymous true'" in err
    assert list(conf_d.iterdir()) == []
