"""The ``varco`` command as a user runs it: help, bad configuration, the demo."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port

VARCO = [sys.executable, "-m", "varco"]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VARCO, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.parametrize("command", [[], ["gateway"], ["edge"], ["demo"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = run(*command, "--help")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: varco")


def test_a_missing_command_is_a_usage_error() -> None:
    result = run()

    assert result.returncode == 2
    assert "required: COMMAND" in result.stderr


# The configuration is checked with msgspec, which stops at the first mistake: one per file.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "device_id: Door/1\nsite: milano\n",
            "edge.yaml: device_id: Expected `str` matching regex",
        ),
        (
            "device_id: door-1\nsite: milano\ndoors:\n  - id: front\n    relay_pin: 40\n",
            "edge.yaml: doors.0.relay_pin: Expected `int` <= 27",
        ),
    ],
)
def test_edge_refuses_a_bad_configuration_naming_the_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text(text)

    result = run("edge", "--config", str(config), timeout=20)

    assert result.returncode == 2
    assert expected in result.stderr


def test_edge_refuses_a_file_that_is_not_there(tmp_path: Path) -> None:
    result = run("edge", "--config", str(tmp_path / "missing.yaml"), timeout=20)

    assert result.returncode == 2
    assert "cannot read" in result.stderr


def test_gateway_prints_an_admin_token_once(tmp_path: Path) -> None:
    env = {**os.environ, "VARCO_DATABASE_URL": f"sqlite:///{tmp_path / 'varco.db'}"}
    result = subprocess.run(
        [*VARCO, "gateway", "--create-admin-token", "ops"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("vk_")
    assert "shown only once" in result.stderr


def test_demo_runs_for_its_duration_and_reports_grants_and_denials(tmp_path: Path) -> None:
    result = run(
        "demo",
        "--duration",
        "8",
        "--port",
        str(free_port()),
        "--data-dir",
        str(tmp_path),
        "--seed",
        "7",
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "admin token  vk_" in out
    assert " granted" in out
    assert "denied (" in out
    assert "taps " in out.splitlines()[-1]


def test_demo_says_so_when_its_port_is_taken() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run("demo", "--duration", "1", "--port", str(port), timeout=30)

    assert result.returncode == 1
    assert f"port {port} is in use" in result.stderr


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("state_dir: /proc/varco-nowhere\n", "cannot open the outbox /proc/varco-nowhere"),
        (
            "doors:\n  - id: front\n    relay_pin: 17\n    reader:\n      kind: mfrc522\n",
            "mfrc522 on SPI 0.0: cannot open /dev/spidev0.0: no such device: turn SPI on",
        ),
    ],
    ids=["unwritable-state", "rc522-without-spi"],
)
def test_edge_says_in_one_line_why_it_cannot_start(
    tmp_path: Path, extra: str, expected: str
) -> None:
    config = tmp_path / "edge.yaml"
    state = "" if "state_dir" in extra else f"state_dir: {tmp_path / 'state'}\n"
    config.write_text(f"device_id: d1\nsite: milano\npin_factory: mock\n{state}{extra}")

    result = run("edge", "--config", str(config), timeout=30)

    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    demo = subprocess.Popen(
        [*VARCO, "demo", "--port", str(free_port()), "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stdout is not None
        for line in demo.stdout:  # the banner comes once everything is up
            if line.startswith("  stop"):
                break
        demo.send_signal(signal.SIGINT)
        out, _ = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()

    assert demo.returncode == 0
    assert "stopping..." in out
    assert out.strip().splitlines()[-1].startswith("-- ")


STUCK = """
import asyncio
from varco.demo.runner import _stop_within

async def main():
    _stop_within(0.2, asyncio.get_running_loop())
    await asyncio.create_task(asyncio.Event().wait(), name="never-ends")

asyncio.run(main())
"""


def test_a_demo_that_cannot_stop_exits_anyway_and_names_what_is_stuck() -> None:
    result = subprocess.run(
        [sys.executable, "-c", STUCK], capture_output=True, text=True, timeout=30, check=False
    )

    assert result.returncode == 1
    assert "varco demo: not stopped after 0.2s; exiting anyway" in result.stderr
    assert "never-ends" in result.stderr


def test_gateway_refuses_settings_it_cannot_use_naming_each_variable(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "VARCO_DATABASE_URL": f"sqlite:///{tmp_path / 'varco.db'}",
        "VARCO_MQTT_PORT": "eighteen",
        "VARCO_MQTT_TLS_CA_FILE": str(tmp_path / "missing-ca.crt"),
    }
    result = subprocess.run(
        [*VARCO, "gateway"], capture_output=True, text=True, timeout=60, env=env, check=False
    )

    assert result.returncode == 2
    assert "varco gateway: invalid settings:" in result.stderr
    assert "VARCO_MQTT_PORT: Input should be a valid integer" in result.stderr
    assert f"VARCO_MQTT_TLS_CA_FILE: Value error, no such file: {tmp_path}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"VARCO_MQTT_TLS_CA_FILE": "{not_a_cert}"}, "VARCO_MQTT_TLS: the certificates cannot"),
        ({"VARCO_MQTT_TLS_KEY_FILE": "{not_a_cert}"}, "VARCO_MQTT_TLS_KEY_FILE: given without"),
    ],
    ids=["not-a-certificate", "key-without-certificate"],
)
def test_gateway_refuses_tls_files_it_cannot_use(
    tmp_path: Path, variables: dict[str, str], expected: str
) -> None:
    not_a_cert = tmp_path / "notes.txt"
    not_a_cert.write_text("not a certificate\n")
    env = {
        **os.environ,
        "VARCO_DATABASE_URL": f"sqlite:///{tmp_path / 'varco.db'}",
        **{k: v.format(not_a_cert=not_a_cert) for k, v in variables.items()},
    }
    result = subprocess.run(
        [*VARCO, "gateway"], capture_output=True, text=True, timeout=60, env=env, check=False
    )

    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
