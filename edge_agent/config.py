"""The edge agent's configuration file: one pydantic model, validated before any pin is touched.

The JSON Schema in ``firmware_config/`` is generated from these models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from edge_agent.errors import ConfigError
from varco.protocol import ID_PATTERN

Id = Annotated[str, Field(pattern=ID_PATTERN)]
# BCM GPIO numbers on a Pi's 40-pin header.
Pin = Annotated[int, Field(ge=0, le=27, description="BCM GPIO number")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerConfig(_Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    username: str | None = None
    password: SecretStr | None = None
    keepalive: Annotated[int, Field(ge=5, le=3600)] = 30


class SimulatedReaderConfig(_Section):
    kind: Literal["simulated"] = "simulated"


ReaderConfig = SimulatedReaderConfig


class DoorConfig(_Section):
    id: Id
    relay_pin: Pin
    relay_active_high: bool = True
    contact_pin: Pin | None = Field(
        default=None, description="Reed switch, closed (pulled low) when the door is shut"
    )
    reader: ReaderConfig = SimulatedReaderConfig()
    decision_timeout_seconds: Annotated[float, Field(gt=0, le=10)] = 1.0


class DeskConfig(_Section):
    id: Id
    sensor: Literal["pressure_mat"] = "pressure_mat"
    pin: Pin
    bounce_seconds: Annotated[float, Field(ge=0, le=5)] = 0.05


class EdgeConfig(_Section):
    """One device: a door controller (doors) or a desk node (desks), or both."""

    device_id: Id
    site: Id
    broker: BrokerConfig = BrokerConfig()
    pin_factory: Literal["default", "mock"] = Field(
        default="default",
        description="'mock' runs without GPIO hardware (gpiozero's MockFactory)",
    )
    doors: Annotated[list[DoorConfig], Field(max_length=8)] = []
    desks: Annotated[list[DeskConfig], Field(max_length=32)] = []
    status_interval_seconds: Annotated[float, Field(ge=1, le=3600)] = 30.0


def load_config(path: Path) -> EdgeConfig:
    """Read and validate a YAML configuration file; raise ``ConfigError`` naming the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        return EdgeConfig.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"{path}: {'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors(include_url=False)
        ]
        raise ConfigError("\n".join(lines)) from None
