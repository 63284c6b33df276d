"""The edge agent's configuration file: msgspec structs, validated before any pin is touched.

msgspec, not pydantic: on a Pi Zero 2 W pydantic alone would cost ~11 MB of a 40 MB budget.
A file is validated strictly (``msgspec.convert``: no ``"5"`` for a number) by
``load_config``, which names the first wrong field and the reason. Structs built in Python are
not validated field by field (msgspec does not on ``__init__``); they still get the cross-field
checks, and a plain ``str`` for a secret or a folder is turned into ``Secret`` or ``Path``.

The JSON Schema in ``firmware_config/edge-config.schema.json`` is generated from these structs
(``python -m edge_agent.config > firmware_config/edge-config.schema.json``) and a test keeps the
two equal.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias

import msgspec
import yaml
from msgspec import Meta
from msgspec.structs import force_setattr

from edge_agent.errors import ConfigError
from varco.protocol import ID_PATTERN, is_valid_id
from varco.protocol.validation import FieldError, explain
from varco.transport import Tls, TlsError

__all__ = [
    "DEFAULT_STATE_DIR",
    "BrokerConfig",
    "DeskConfig",
    "DoorConfig",
    "EdgeConfig",
    "KeyboardReaderConfig",
    "Mfrc522ReaderConfig",
    "PirDeskConfig",
    "PressureMatDeskConfig",
    "Rdm6300ReaderConfig",
    "ReaderConfig",
    "Secret",
    "SerialLineReaderConfig",
    "SimulatedReaderConfig",
    "TlsConfig",
    "UltrasonicDeskConfig",
    "json_schema",
    "load_config",
    "parse_config",
]

DEFAULT_STATE_DIR = Path("/var/lib/varco")

Id = Annotated[str, Meta(pattern=ID_PATTERN)]
# BCM GPIO numbers on a Pi's 40-pin header.
Pin = Annotated[int, Meta(ge=0, le=27, description="BCM GPIO number")]
Seconds = Annotated[float, Meta(ge=0, le=86_400)]
HoldOff = Annotated[
    float,
    Meta(
        ge=0,
        le=60,
        description="A card held on the reader is one tap: the same UID is ignored this long",
    ),
]


class Secret:
    """A string that stays out of logs and reprs; ``get_secret_value()`` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return self._value == other._value

    def __hash__(self) -> int:
        return hash(self._value)


def _secret(value: Secret | str | None) -> Secret | None:
    return Secret(value) if isinstance(value, str) else value


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every section: read-only, and a field the struct does not know is refused.

    Subclasses inherit ``forbid_unknown_fields`` but repeat ``kw_only`` (msgspec applies it to
    each class's own fields) and ``frozen`` (for mypy).
    """


class TlsConfig(_Section, frozen=True, kw_only=True):
    """TLS to the broker; its certificate is always verified and its name checked."""

    ca_file: Annotated[
        Path | None,
        Meta(description="The CA that signed the broker's certificate; the system's when unset"),
    ] = None
    cert_file: Annotated[
        Path | None, Meta(description="This device's certificate, for brokers that ask for one")
    ] = None
    key_file: Annotated[
        Path | None, Meta(description="The private key of cert_file (if not in cert_file)")
    ] = None

    def __post_init__(self) -> None:
        for name in ("ca_file", "cert_file", "key_file"):
            if isinstance(getattr(self, name), str):
                force_setattr(self, name, Path(getattr(self, name)))

    def transport(self) -> Tls:
        return Tls(ca_file=self.ca_file, cert_file=self.cert_file, key_file=self.key_file)


class BrokerConfig(_Section, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535, description="1883, or 8883 with TLS")] = 1883
    username: str | None = None
    password: Secret | None = None
    keepalive: Annotated[int, Meta(ge=5, le=3600)] = 30
    tls: TlsConfig | None = None

    def __post_init__(self) -> None:
        force_setattr(self, "password", _secret(self.password))


class _Reader(_Section, tag_field="kind", frozen=True, kw_only=True):
    """A door's reader; ``kind`` says which."""


class SimulatedReaderConfig(_Reader, tag="simulated", frozen=True, kw_only=True):
    """A reader driven by software (the demo, tests)."""

    hold_off_seconds: HoldOff = 0.0


class Rdm6300ReaderConfig(_Reader, tag="rdm6300", frozen=True, kw_only=True):
    """A 125 kHz RDM6300 on a serial port: STX, 10 hex digits, 2 hex checksum, ETX."""

    port: str = "/dev/serial0"
    baudrate: Annotated[int, Meta(gt=0)] = 9600
    hold_off_seconds: HoldOff = 2.0


class SerialLineReaderConfig(_Reader, tag="serial_line", frozen=True, kw_only=True):
    """A USB reader that types one UID per line (hex or decimal) on a serial port."""

    port: str = "/dev/ttyACM0"
    baudrate: Annotated[int, Meta(gt=0)] = 9600
    hold_off_seconds: HoldOff = 2.0


class Mfrc522ReaderConfig(_Reader, tag="mfrc522", frozen=True, kw_only=True):
    """An RC522 (13.56 MHz, MIFARE) on SPI (``spidev``, in the ``[pi]`` extra); its reset pin
    goes through the pin factory like every other pin."""

    spi_bus: Annotated[int, Meta(ge=0, le=1)] = 0
    spi_device: Annotated[int, Meta(ge=0, le=1)] = 0
    reset_pin: Pin = 25
    poll_seconds: Annotated[float, Meta(gt=0, le=5)] = 0.1
    hold_off_seconds: HoldOff = 2.0


class KeyboardReaderConfig(_Reader, tag="keyboard", frozen=True, kw_only=True):
    """A USB reader that types the card number as a keyboard, read through evdev (Linux)."""

    device: Annotated[
        str,
        Meta(
            min_length=1,
            description=(
                "Its event device, best by id: /dev/input/by-id/usb-<maker>-event-kbd. "
                "The agent takes it for itself, so its keystrokes reach nothing else"
            ),
        ),
    ]
    hold_off_seconds: HoldOff = 2.0


# A file names the kind (`kind: rdm6300`); a door without a `reader` gets a simulated one.
ReaderConfig: TypeAlias = (
    SimulatedReaderConfig
    | Rdm6300ReaderConfig
    | SerialLineReaderConfig
    | Mfrc522ReaderConfig
    | KeyboardReaderConfig
)


class DoorConfig(_Section, frozen=True, kw_only=True):
    id: Id
    relay_pin: Pin
    relay_active_high: Annotated[
        bool, Meta(description="false for relay boards that switch on a low input")
    ] = True
    unlock_seconds: Annotated[
        float, Meta(gt=0, le=300, description="How long the door unlocks on an offline grant")
    ] = 5.0
    contact_pin: Annotated[
        Pin | None,
        Meta(description="Reed switch to ground: closed (low) when the door is shut"),
    ] = None
    exit_button_pin: Annotated[
        Pin | None, Meta(description="Request-to-exit button to ground; unlocks from inside")
    ] = None
    held_open_seconds: Annotated[
        float,
        Meta(gt=0, le=3600, description="Open longer than this after a grant raises held_open"),
    ] = 30.0
    green_led_pin: Pin | None = None
    red_led_pin: Pin | None = None
    buzzer_pin: Pin | None = None
    reader: ReaderConfig = SimulatedReaderConfig()
    decision_timeout_seconds: Annotated[
        float,
        Meta(gt=0, le=10, description="How long to wait for the gateway before deciding offline"),
    ] = 1.0
    fail_mode: Annotated[
        Literal["secure", "safe"],
        Meta(
            description=(
                "With no valid allow-list and no gateway: 'secure' keeps the door locked, "
                "'safe' opens it (for doors that must never trap anyone)"
            )
        ),
    ] = "secure"


class _Desk(_Section, tag_field="sensor", frozen=True, kw_only=True):
    """A desk's occupancy sensor; ``sensor`` says which."""


class PressureMatDeskConfig(_Desk, tag="pressure_mat", frozen=True, kw_only=True):
    """A pressure mat (a switch to ground) under the chair or on the desk."""

    id: Id
    pin: Pin
    bounce_seconds: Annotated[float, Meta(ge=0, le=5)] = 0.05
    settle_seconds: Annotated[
        float,
        Meta(ge=0, le=600, description="The mat must stay pressed/released this long to count"),
    ] = 2.0


class PirDeskConfig(_Desk, tag="pir", frozen=True, kw_only=True):
    """A PIR motion sensor over the desk: occupied until no motion for ``hold_seconds``."""

    id: Id
    pin: Pin
    hold_seconds: Annotated[float, Meta(gt=0, le=7200)] = 300.0


class UltrasonicDeskConfig(_Desk, tag="ultrasonic", frozen=True, kw_only=True):
    """An HC-SR04 facing the chair: occupied when something is nearer than the threshold."""

    id: Id
    trigger_pin: Pin
    echo_pin: Pin
    threshold_m: Annotated[float, Meta(gt=0.02, le=4)] = 0.6
    sample_seconds: Annotated[float, Meta(ge=0.05, le=60)] = 0.5
    samples: Annotated[
        int,
        Meta(
            ge=1,
            le=100,
            description="Consecutive readings on the same side of the threshold to count",
        ),
    ] = 4


# A file names the sensor of every desk (`sensor: pir`), as it did with pydantic.
DeskConfig: TypeAlias = PressureMatDeskConfig | PirDeskConfig | UltrasonicDeskConfig


class EdgeConfig(_Section, frozen=True, kw_only=True):
    """One device: a door controller (doors) or a desk node (desks), or both."""

    device_id: Id
    site: Id
    broker: BrokerConfig = BrokerConfig()
    pin_factory: Annotated[
        Literal["default", "mock"],
        Meta(description="'mock' runs without GPIO hardware (gpiozero's MockFactory)"),
    ] = "default"
    allowlist_key: Annotated[
        Secret | None,
        Meta(
            description=(
                "The device's allow-list key (64 hex digits, given when the device was "
                "created); without it the doors cannot decide offline and apply their fail mode"
            )
        ),
    ] = None
    # A factory: msgspec's schema cannot spell a Path default (json_schema() adds it).
    state_dir: Annotated[
        Path,
        Meta(description="Where the outbox and the cached allow-list are kept (survives reboots)"),
    ] = msgspec.field(default_factory=lambda: DEFAULT_STATE_DIR)
    outbox_max_events: Annotated[
        int,
        Meta(
            ge=100,
            le=10_000_000,
            description="At the bound the oldest desk events go first, then the oldest of any kind",
        ),
    ] = 100_000
    doors: Annotated[list[DoorConfig], Meta(max_length=8)] = []
    desks: Annotated[list[DeskConfig], Meta(max_length=32)] = []
    status_interval_seconds: Annotated[float, Meta(ge=1, le=3600)] = 30.0

    def __post_init__(self) -> None:
        # Built in Python (the demo, tests, benches), these may come as plain strings.
        force_setattr(self, "allowlist_key", _secret(self.allowlist_key))
        if isinstance(self.state_dir, str):
            force_setattr(self, "state_dir", Path(self.state_dir))
        self._key_is_hex()
        self._ids_are_whole()
        self._pins_are_used_once()

    def _ids_are_whole(self) -> None:
        # The pattern in the schema ends in "$", which lets a final newline through here
        # (msgspec searches with Python's re); an id ends up in MQTT topics, so check it whole.
        named = [("device_id", self.device_id), ("site", self.site)]
        named += [(f"doors.{i}.id", door.id) for i, door in enumerate(self.doors)]
        named += [(f"desks.{i}.id", desk.id) for i, desk in enumerate(self.desks)]
        for field, value in named:
            if not is_valid_id(value):
                raise FieldError(field, f"not an id: {value!r}")

    def _key_is_hex(self) -> None:
        key = self.allowlist_key
        if key is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", key.get_secret_value()):
            raise FieldError("allowlist_key", "must be 64 hexadecimal digits")

    def _pins_are_used_once(self) -> None:
        used: dict[int, str] = {}
        for where, pin in self._pins():
            if pin in used:
                raise ValueError(f"GPIO {pin} is used twice: by {used[pin]} and by {where}")
            used[pin] = where
        ids = [door.id for door in self.doors] + [desk.id for desk in self.desks]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"ids used more than once: {', '.join(duplicates)}")

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


def _json_type(value: object) -> str:
    """The name msgspec's messages give a YAML value's type."""
    names = {type(None): "null", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


def _decode(kind: type, value: object) -> object:
    """``dec_hook``: the types msgspec does not know, each spelled as a string in a file."""
    if kind is Secret or kind is Path:
        if not isinstance(value, str):
            raise TypeError(f"Expected `str`, got `{_json_type(value)}`")
        return Secret(value) if kind is Secret else Path(value)
    raise TypeError(f"Unsupported type: {kind!r}")


def _schema(kind: type) -> dict[str, Any]:
    """``schema_hook``: the same types, as the JSON Schema sees them."""
    if kind is Secret:
        return {"type": "string", "format": "password", "writeOnly": True}
    if kind is Path:
        return {"type": "string", "format": "path"}
    raise NotImplementedError(kind)


def parse_config(data: object, *, source: str | Path) -> EdgeConfig:
    """Validate a configuration as loaded from YAML; raise ``ConfigError`` naming the field.

    ``source`` (the file, usually) begins the message: ``edge.yaml: doors.0.relay_pin: ...``.
    msgspec stops at the first mistake, so the message names one field.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        config = msgspec.convert(data, EdgeConfig, dec_hook=_decode)
    except msgspec.ValidationError as exc:
        where, reason = explain(exc)
        raise ConfigError(f"{source}: {where or '(top)'}: {reason}") from None
    if config.broker.tls is not None:
        _check_tls(config.broker.tls, source)
    return config


def _check_tls(tls: TlsConfig, source: str | Path) -> None:
    try:
        tls.transport().check()
    except TlsError as exc:
        where = f"broker.tls.{exc.file}" if exc.file else "broker.tls"
        raise ConfigError(f"{source}: {where}: {exc.reason}") from None


def load_config(path: Path) -> EdgeConfig:
    """Read and validate a YAML configuration file; raise ``ConfigError`` naming the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_config(data, source=path)


def json_schema() -> str:
    """Return the configuration's JSON Schema, as committed in ``firmware_config/``."""
    # Imported here: nothing else in `varco edge` loads json (bench/README.md).
    import json  # noqa: PLC0415

    schema = msgspec.json.schema(EdgeConfig, schema_hook=_schema)
    state_dir = schema["$defs"]["EdgeConfig"]["properties"]["state_dir"]
    state_dir["default"] = str(DEFAULT_STATE_DIR)
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(json_schema(), end="")
