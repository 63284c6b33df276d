"""The edge configuration file as a maker writes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import (
    BrokerConfig,
    DoorConfig,
    EdgeConfig,
    Mfrc522ReaderConfig,
    PirDeskConfig,
    Secret,
    SimulatedReaderConfig,
    json_schema,
    load_config,
)
from edge_agent.errors import ConfigError

KEY = "0123456789abcdef" * 4

EXAMPLES = Path(__file__).parents[2] / "firmware_config" / "examples"


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_example_is_valid(example: Path) -> None:
    config = load_config(example)

    assert isinstance(config, EdgeConfig)
    assert config.doors or config.desks


def test_examples_exist() -> None:
    assert {p.name for p in EXAMPLES.glob("*.yaml")} >= {"door-controller.yaml", "desk-node.yaml"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a list\n", "expected a mapping at the top level"),
        ("device_id: [unclosed\n", "not valid YAML"),
        ("site: milano\n", "device_id: missing"),
        ('device_id: "door-1\\n"\nsite: milano\n', "device_id: not an id: 'door-1\\n'"),
        (
            "device_id: d1\nsite: milano\ndesks:\n  - {id: Desk 1, sensor: pir, pin: 4}\n",
            "desks.0.id: Expected `str` matching regex",
        ),
        (
            "device_id: d1\nsite: milano\ncolour: red\n",
            "colour: unknown field",
        ),
        (
            "device_id: d1\nsite: milano\nbroker:\n  hots: example.org\n",
            "broker.hots: unknown field",
        ),
        (
            "device_id: d1\nsite: milano\ndoors:\n  - id: front\n    relay_pin: 17\n"
            "    decision_timeout_seconds: 0\n",
            "doors.0.decision_timeout_seconds: Expected `float` > 0.0",
        ),
        (
            "device_id: d1\nsite: milano\nbroker:\n  port: 70000\n",
            "broker.port: Expected `int` <= 65535",
        ),
        (
            "device_id: d1\nsite: milano\ndoors:\n  - id: front\n    relay_pin: '17'\n",
            "doors.0.relay_pin: Expected `int`, got `str`",
        ),
        (
            "device_id: d1\nsite: milano\ndoors:\n  - id: front\n    relay_pin: 17\n"
            "    reader:\n      port: /dev/serial0\n",
            "doors.0.reader.kind: missing",
        ),
        (
            "device_id: d1\nsite: milano\ndesks:\n  - id: desk-1\n    sensor: laser\n    pin: 5\n",
            "desks.0.sensor: Invalid value 'laser'",
        ),
        (
            "device_id: d1\nsite: milano\ndesks:\n  - id: desk-1\n    pin: 5\n",
            "desks.0.sensor: missing",
        ),
        ("device_id: d1\nsite: milano\nallowlist_key: abc\n", "allowlist_key: must be 64 hex"),
        ("device_id: d1\nsite: milano\nstate_dir: 5\n", "state_dir: Expected `str`, got `int`"),
        (
            "device_id: d1\nsite: milano\nbroker:\n  password: [a, b]\n",
            "broker.password: Expected `str`, got `array`",
        ),
    ],
)
def test_bad_files_name_the_field_and_the_reason(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(text)

    with pytest.raises(ConfigError) as error:
        load_config(path)

    assert expected in str(error.value)
    assert str(path) in str(error.value)


def test_the_committed_json_schema_is_the_models() -> None:
    committed = (EXAMPLES.parent / "edge-config.schema.json").read_text()

    assert committed == json_schema(), (
        "regenerate: python -m edge_agent.config > firmware_config/edge-config.schema.json"
    )


def test_a_pin_used_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(
        "device_id: d1\nsite: milano\ndoors:\n  - id: front\n    relay_pin: 17\n"
        "    contact_pin: 17\n"
    )

    with pytest.raises(ConfigError, match="GPIO 17 is used twice"):
        load_config(path)


def test_an_id_used_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(
        "device_id: d1\nsite: milano\ndoors:\n  - id: front\n    relay_pin: 17\n"
        "desks:\n  - id: front\n    sensor: pir\n    pin: 5\n"
    )

    with pytest.raises(ConfigError, match=r"\(top\): ids used more than once: front"):
        load_config(path)


def test_a_file_gives_secrets_paths_and_the_readers_and_sensors_it_names(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(
        f"device_id: d1\nsite: milano\nbroker:\n  password: pw\nallowlist_key: '{KEY}'\n"
        "state_dir: /srv/varco\ndoors:\n  - id: front\n    relay_pin: 17\n"
        "  - id: back\n    relay_pin: 18\n    reader:\n      kind: mfrc522\n"
        "desks:\n  - id: desk-1\n    sensor: pir\n    pin: 5\n"
    )

    config = load_config(path)

    assert config.broker.password == Secret("pw")
    assert config.allowlist_key is not None
    assert config.allowlist_key.get_secret_value() == KEY
    assert config.state_dir == Path("/srv/varco")
    assert config.doors[0].reader == SimulatedReaderConfig()
    assert config.doors[1].reader == Mfrc522ReaderConfig()
    assert config.desks == [PirDeskConfig(id="desk-1", pin=5)]
    assert KEY not in repr(config)
    assert "pw" not in repr(config.broker)


def test_a_secret_is_masked() -> None:
    secret = Secret("s3cret")

    assert (str(secret), repr(secret)) == ("**********", "Secret('**********')")
    assert secret.get_secret_value() == "s3cret"
    assert secret == Secret("s3cret") != Secret("other")


def test_a_config_built_in_python_takes_plain_strings_and_is_checked() -> None:
    config = EdgeConfig(
        device_id="d1",
        site="milano",
        broker=BrokerConfig(password="pw"),  # type: ignore[arg-type]
        allowlist_key=KEY,  # type: ignore[arg-type]
        state_dir="/srv/varco",  # type: ignore[arg-type]
    )

    assert config.broker.password == Secret("pw")
    assert config.allowlist_key == Secret(KEY)
    assert config.state_dir == Path("/srv/varco")
    assert EdgeConfig(device_id="d1", site="milano").state_dir == Path("/var/lib/varco")
    with pytest.raises(ValueError, match="allowlist_key: must be 64 hexadecimal digits"):
        EdgeConfig(device_id="d1", site="milano", allowlist_key=Secret("abc"))
    with pytest.raises(ValueError, match="GPIO 17 is used twice"):
        EdgeConfig(
            device_id="d1",
            site="milano",
            doors=[DoorConfig(id="front", relay_pin=17, contact_pin=17)],
        )


def tls_file(tmp_path: Path, tls: str) -> Path:
    path = tmp_path / "edge.yaml"
    path.write_text(f"device_id: d1\nsite: milano\nbroker:\n  port: 8883\n  tls:\n{tls}")
    return path


def test_tls_with_the_systems_cas_needs_no_file(tmp_path: Path) -> None:
    config = load_config(tls_file(tmp_path, "    {}\n"))

    assert config.broker.tls is not None
    assert config.broker.tls.ca_file is None


@pytest.mark.parametrize(
    ("tls", "expected"),
    [
        ("    ca_file: /nowhere/ca.crt\n", "broker.tls.ca_file: no such file: /nowhere/ca.crt"),
        ("    key_file: /nowhere/d1.key\n", "broker.tls.key_file: given without cert_file"),
        ("    ca_file: {here}\n", "broker.tls: the certificates cannot be used"),
        ("    verify: false\n", "broker.tls.verify: unknown field"),
    ],
)
def test_tls_files_that_cannot_be_used_are_refused_at_start(
    tmp_path: Path, tls: str, expected: str
) -> None:
    # {here}: the configuration file itself, there but not a certificate.
    path = tls_file(tmp_path, tls.format(here=tmp_path / "edge.yaml"))

    with pytest.raises(ConfigError) as error:
        load_config(path)

    assert f"{path}: {expected}" in str(error.value)
