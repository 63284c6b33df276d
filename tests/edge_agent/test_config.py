"""The edge configuration file as a maker writes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import EdgeConfig, json_schema, load_config
from edge_agent.errors import ConfigError

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
        ("site: milano\n", "device_id: Field required"),
        ("device_id: d1\nsite: milano\ncolour: red\n", "colour: Extra inputs are not permitted"),
        (
            "device_id: d1\nsite: milano\ndoors:\n  - id: front\n    relay_pin: 17\n"
            "    decision_timeout_seconds: 0\n",
            "doors.0.decision_timeout_seconds: Input should be greater than 0",
        ),
        (
            "device_id: d1\nsite: milano\nbroker:\n  port: 70000\n",
            "broker.port: Input should be less than or equal to 65535",
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
