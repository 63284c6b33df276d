"""The edge agent's configuration file: one pydantic model, validated before any pin is touched.

The JSON Schema in ``firmware_config/edge-config.schema.json`` is generated from these models
(``python -m edge_agent.config > firmware_config/edge-config.schema.json``) and a test keeps the
two equal.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from edge_agent.errors import ConfigError
from varco.protocol import ID_PATTERN

Id = Annotated[str, Field(pattern=ID_PATTERN)]
# BCM GPIO numbers on a Pi's 40-pin header.
Pin = Annotated[int, Field(ge=0, le=27, description="BCM GPIO number")]
Seconds = Annotated[float, Field(ge=0, le=86_400)]
HoldOff = Annotated[
    float,
    Field(
        ge=0,
        le=60,
        description="A card held on the reader is one tap: the same UID is ignored this long",
    ),
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerConfig(_Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    username: str | None = None
    password: SecretStr | None = None
    keepalive: Annotated[int, Field(ge=5, le=3600)] = 30


class SimulatedReaderConfig(_Section):
    """A reader driven by software (the demo, tests)."""

    kind: Literal["simulated"] = "simulated"
    hold_off_seconds: HoldOff = 0.0


class Rdm6300ReaderConfig(_Section):
    """A 125 kHz RDM6300 on a serial port: STX, 10 hex digits, 2 hex checksum, ETX."""

    kind: Literal["rdm6300"]
    port: str = "/dev/serial0"
    baudrate: Annotated[int, Field(gt=0)] = 9600
    hold_off_seconds: HoldOff = 2.0


class SerialLineReaderConfig(_Section):
    """A USB reader that types one UID per line (hex or decimal) on a serial port."""

    kind: Literal["serial_line"]
    port: str = "/dev/ttyACM0"
    baudrate: Annotated[int, Field(gt=0)] = 9600
    hold_off_seconds: HoldOff = 2.0


class Mfrc522ReaderConfig(_Section):
    """An RC522 (13.56 MHz, MIFARE) on SPI, through the ``mfrc522`` package (``[pi]`` extra)."""

    kind: Literal["mfrc522"]
    spi_bus: Annotated[int, Field(ge=0, le=1)] = 0
    spi_device: Annotated[int, Field(ge=0, le=1)] = 0
    reset_pin: Pin = 25
    poll_seconds: Annotated[float, Field(gt=0, le=5)] = 0.1
    hold_off_seconds: HoldOff = 2.0


ReaderConfig = Annotated[
    SimulatedReaderConfig | Rdm6300ReaderConfig | SerialLineReaderConfig | Mfrc522ReaderConfig,
    Field(discriminator="kind"),
]


class DoorConfig(_Section):
    id: Id
    relay_pin: Pin
    relay_active_high: bool = Field(
        default=True, description="false for relay boards that switch on a low input"
    )
    unlock_seconds: Annotated[float, Field(gt=0, le=300)] = Field(
        default=5.0, description="How long the door unlocks on an offline grant"
    )
    contact_pin: Pin | None = Field(
        default=None, description="Reed switch to ground: closed (low) when the door is shut"
    )
    exit_button_pin: Pin | None = Field(
        default=None, description="Request-to-exit button to ground; unlocks from inside"
    )
    held_open_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=30.0, description="Open longer than this after a grant raises held_open"
    )
    green_led_pin: Pin | None = None
    red_led_pin: Pin | None = None
    buzzer_pin: Pin | None = None
    reader: ReaderConfig = SimulatedReaderConfig()
    decision_timeout_seconds: Annotated[float, Field(gt=0, le=10)] = Field(
        default=1.0, description="How long to wait for the gateway before deciding offline"
    )
    fail_mode: Literal["secure", "safe"] = Field(
        default="secure",
        description=(
            "With no valid allow-list and no gateway: 'secure' keeps the door locked, "
            "'safe' opens it (for doors that must never trap anyone)"
        ),
    )


class PressureMatDeskConfig(_Section):
    """A pressure mat (a switch to ground) under the chair or on the desk."""

    id: Id
    sensor: Literal["pressure_mat"] = "pressure_mat"
    pin: Pin
    bounce_seconds: Annotated[float, Field(ge=0, le=5)] = 0.05
    settle_seconds: Annotated[float, Field(ge=0, le=600)] = Field(
        default=2.0, description="The mat must stay pressed/released this long to count"
    )


class PirDeskConfig(_Section):
    """A PIR motion sensor over the desk: occupied until no motion for ``hold_seconds``."""

    id: Id
    sensor: Literal["pir"]
    pin: Pin
    hold_seconds: Annotated[float, Field(gt=0, le=7200)] = 300.0


class UltrasonicDeskConfig(_Section):
    """An HC-SR04 facing the chair: occupied when something is nearer than the threshold."""

    id: Id
    sensor: Literal["ultrasonic"]
    trigger_pin: Pin
    echo_pin: Pin
    threshold_m: Annotated[float, Field(gt=0.02, le=4)] = 0.6
    sample_seconds: Annotated[float, Field(ge=0.05, le=60)] = 0.5
    samples: Annotated[int, Field(ge=1, le=100)] = Field(
        default=4, description="Consecutive readings on the same side of the threshold to count"
    )


DeskConfig = Annotated[
    PressureMatDeskConfig | PirDeskConfig | UltrasonicDeskConfig,
    Field(discriminator="sensor"),
]


class EdgeConfig(_Section):
    """One device: a door controller (doors) or a desk node (desks), or both."""

    device_id: Id
    site: Id
    broker: BrokerConfig = BrokerConfig()
    pin_factory: Literal["default", "mock"] = Field(
        default="default",
        description="'mock' runs without GPIO hardware (gpiozero's MockFactory)",
    )
    allowlist_key: SecretStr | None = Field(
        default=None,
        description=(
            "The device's allow-list key (64 hex digits, given when the device was created); "
            "without it the doors cannot decide offline and apply their fail mode"
        ),
    )
    state_dir: Path = Field(
        default=Path("/var/lib/varco"),
        description="Where the outbox and the cached allow-list are kept (survives reboots)",
    )
    outbox_max_events: Annotated[int, Field(ge=100, le=10_000_000)] = Field(
        default=100_000,
        description="At the bound the oldest desk events go first, then the oldest of any kind",
    )
    doors: Annotated[list[DoorConfig], Field(max_length=8)] = []
    desks: Annotated[list[DeskConfig], Field(max_length=32)] = []
    status_interval_seconds: Annotated[float, Field(ge=1, le=3600)] = 30.0

    @field_validator("allowlist_key")
    @classmethod
    def _key_is_hex(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", value.get_secret_value()):
            raise ValueError("must be 64 hexadecimal digits")
        return value

    @model_validator(mode="after")
    def _pins_are_used_once(self) -> EdgeConfig:
        used: dict[int, str] = {}
        for where, pin in self._pins():
            if pin in used:
                raise ValueError(f"GPIO {pin} is used twice: by {used[pin]} and by {where}")
            used[pin] = where
        ids = [door.id for door in self.doors] + [desk.id for desk in self.desks]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"ids used more than once: {', '.join(duplicates)}")
        return self

    def _pins(self) -> list[tuple[str, int]]:
        pins: list[tuple[str, int]] = []
        for door in self.doors:
            for name in (
                "relay_pin",
                "contact_pin",
                "exit_button_pin",
                "green_led_pin",
                "red_led_pin",
                "buzzer_pin",
            ):
                value = getattr(door, name)
                if value is not None:
                    pins.append((f"door {door.id} {name}", value))
            if isinstance(door.reader, Mfrc522ReaderConfig):
                pins.append((f"door {door.id} reader reset_pin", door.reader.reset_pin))
        for desk in self.desks:
            if isinstance(desk, UltrasonicDeskConfig):
                pins.append((f"desk {desk.id} trigger_pin", desk.trigger_pin))
                pins.append((f"desk {desk.id} echo_pin", desk.echo_pin))
            else:
                pins.append((f"desk {desk.id} pin", desk.pin))
        return pins


def load_config(path: Path) -> EdgeConfig:
    """Read and validate a YAML configuration file; raise ``ConfigError`` naming the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
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


def json_schema() -> str:
    """Return the configuration's JSON Schema, as committed in ``firmware_config/``."""
    # Imported here: nothing else in `varco edge` loads json (bench/README.md).
    import json  # noqa: PLC0415

    return json.dumps(EdgeConfig.model_json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(json_schema(), end="")
