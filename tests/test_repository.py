"""The repository as a new user meets it: commands, packaging, the compose file."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

from gateway.settings import Settings
from varco.protocol import BROKER_MAX_PACKET_SIZE, BROKER_MESSAGE_SIZE_LIMIT, MAX_ALLOWLIST_BYTES

ROOT = Path(__file__).parents[1]


def readme_commands() -> list[str]:
    """The README's commands: its ```sh blocks (examples are ```bash)."""
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    return [block.strip() for block in blocks]


def test_readme_starts_with_the_demo_then_the_tests() -> None:
    first, second = readme_commands()[:2]

    assert first.endswith("pip install '.[demo]' && varco demo")
    assert "pip install -e '.[dev]'" in second
    assert second.endswith("pytest")


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()

    assert ci[-1] == readme_commands()[1]


def test_the_edge_extra_leaves_out_the_gateway_stack() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    edge = " ".join(project["dependencies"] + project["optional-dependencies"]["edge"]).lower()

    # pydantic too: ~11 MB of the Pi Zero 2 W's 40 MB budget (bench/README.md).
    for heavy in ("fastapi", "sqlalchemy", "influxdb", "uvicorn", "psycopg", "pydantic"):
        assert heavy not in edge


def test_the_edge_agent_imports_without_the_gateway_stack() -> None:
    probe = (
        "import sys, edge_agent.agent, varco.cli; "
        "heavy = {'fastapi', 'sqlalchemy', 'uvicorn', 'gateway', 'pydantic'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_compose_mounts_and_builds_only_what_the_repository_has() -> None:
    services = compose()["services"]
    volumes = set(compose().get("volumes", {}))

    assert {"mosquitto", "gateway"} <= set(services)
    for name, service in services.items():
        build = service.get("build")
        if build is not None:
            context = build if isinstance(build, str) else build["context"]
            assert (ROOT / context / "Dockerfile").is_file(), name
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in volumes, f"{name} uses undeclared volume {source}"
        one_shot = service.get("restart") == "no"
        assert "healthcheck" in service or build is not None or one_shot, (
            f"{name} has no health check"
        )


def test_compose_starts_things_in_order_and_asks_for_its_secrets() -> None:
    services = compose()["services"]
    text = (ROOT / "docker-compose.yml").read_text()
    example = (ROOT / ".env.example").read_text()

    assert services["gateway"]["depends_on"]["mosquitto-setup"] == {
        "condition": "service_completed_successfully"
    }
    assert services["mosquitto"]["depends_on"]["mosquitto-init"] == {
        "condition": "service_completed_successfully"
    }
    for secret in set(re.findall(r"\$\{(\w+)(?::\?|:-|\})", text)):
        assert f"{secret}=" in example, f".env.example does not mention {secret}"
    # The broker it mounts is the one that confines each device to its own topics.
    assert "mosquitto-dynsec.conf:/mosquitto/config/mosquitto.conf" in text


def test_compose_publishes_the_api_on_this_host_only() -> None:
    gateway = compose()["services"]["gateway"]

    # host_ip:host_port:container_port; "8000:8000" would listen on every interface.
    assert gateway["ports"] == ["127.0.0.1:8000:8000"]


def test_compose_passes_the_gateway_only_settings_it_has() -> None:
    environment = compose()["services"]["gateway"]["environment"]
    known = {f"VARCO_{field.upper()}" for field in Settings.model_fields}

    assert set(environment) <= known
    assert {"VARCO_DATABASE_URL", "VARCO_MQTT_HOST"} <= set(environment)


def test_every_broker_config_we_ship_turns_nagle_off() -> None:
    configs = list(ROOT.glob("deploy/**/mosquitto*.conf"))

    assert configs
    for config in configs:
        assert re.search(r"^set_tcp_nodelay true$", config.read_text(), re.MULTILINE), config


def test_every_broker_config_we_ship_bounds_messages_just_above_an_allowlist() -> None:
    configs = list(ROOT.glob("deploy/**/mosquitto*.conf"))

    assert MAX_ALLOWLIST_BYTES < BROKER_MESSAGE_SIZE_LIMIT <= MAX_ALLOWLIST_BYTES * 1.1
    assert BROKER_MESSAGE_SIZE_LIMIT < BROKER_MAX_PACKET_SIZE <= BROKER_MESSAGE_SIZE_LIMIT * 1.1
    assert configs
    for config in configs:
        text = config.read_text()
        assert re.search(
            rf"^message_size_limit {BROKER_MESSAGE_SIZE_LIMIT}$", text, re.MULTILINE
        ), config
        assert re.search(rf"^max_packet_size {BROKER_MAX_PACKET_SIZE}$", text, re.MULTILINE), config
