"""A device's edge configuration file, as the gateway can write it: ready to install on the Pi.

The gateway knows a device's identity, broker, allow-list key, doors and desks, not how its Pi
is wired: the file assumes the standard wiring of ``firmware_config/wiring.md`` (a test keeps
this table and that page equal). The first door is wired as the door-controller example, the
second on the RC522's other chip select with pins of its own; desks are pressure mats on the
header's next free pins. A device the standard wiring has no pins for is refused
(``WiringError``), never given a file that would not work.

The broker password is written only into the file returned when the device is created: the
gateway keeps its hash. Every other time the file says where it goes.

The file is written line by line, so each pin says where it is on the header; every value is
JSON, which is YAML, so no id or host can break the file. The edge's own loader
(``edge_agent.config.load_config``) reads it in the tests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.errors import GatewayError

STATE_DIR = "/var/lib/varco"  # edge_agent.config.DEFAULT_STATE_DIR: the unit's StateDirectory

# The Pi's 40-pin header: BCM GPIO number -> header position. Fixed by the hardware.
HEADER_PIN = {
    0: 27, 1: 28, 2: 3, 3: 5, 4: 7, 5: 29, 6: 31, 7: 26, 8: 24, 9: 21, 10: 19, 11: 23, 12: 32,
    13: 33, 14: 8, 15: 10, 16: 36, 17: 11, 18: 12, 19: 35, 20: 38, 21: 40, 22: 15, 23: 16,
    24: 18, 25: 22, 26: 37, 27: 13,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class DoorPins:
    """Where one door's parts go in the standard wiring (BCM numbers)."""

    spi_device: int  # the RC522's chip select on SPI0: CE0 (BCM 8) or CE1 (BCM 7)
    reset: int
    relay: int
    contact: int
    exit_button: int
    green_led: int
    red_led: int
    buzzer: int

    def pins(self) -> tuple[int, ...]:
        return (
            self.reset,
            self.relay,
            self.contact,
            self.exit_button,
            self.green_led,
            self.red_led,
            self.buzzer,
        )


STANDARD_DOORS = (
    DoorPins(
        0, reset=25, relay=17, contact=27, exit_button=22, green_led=20, red_led=21, buzzer=12
    ),
    DoorPins(1, reset=24, relay=23, contact=19, exit_button=26, green_led=16, red_led=13, buzzer=6),
)
# Pressure mats, in this order, on the pins no door of the device uses. Never SPI0 (BCM 7-11),
# the UART (14, 15), the HAT EEPROM (0, 1) or I2C (2, 3: a real-time clock).
DESK_PINS = (5, 6, 13, 16, 19, 26, 4, 18, 23, 24, 12, 20, 21, 22, 17, 27, 25)


class WiringError(GatewayError, ValueError):
    """The device has more doors or desks than the standard wiring has pins for."""


@dataclass(frozen=True, slots=True)
class DoorSpec:
    """A door the device drives, as the gateway knows it."""

    id: str
    unlock_seconds: float


@dataclass(frozen=True, slots=True)
class Broker:
    """How the device reaches the broker; ``password`` only in the answer that creates it."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    tls_ca_file: str | None = None


def _v(value: object) -> str:
    return json.dumps(value)


def _pin(bcm: int) -> str:
    return f"{bcm:<13}# BCM {bcm}, header pin {HEADER_PIN[bcm]}"


def render_config(
    *,
    device_id: str,
    site: str,
    allowlist_key: str,
    broker: Broker,
    doors: Sequence[DoorSpec] = (),
    desks: Sequence[str] = (),
) -> str:
    """Write the device's configuration file (``edge_agent.config.EdgeConfig``) as YAML."""
    if len(doors) > len(STANDARD_DOORS):
        raise WiringError(
            f"device {device_id!r} drives {len(doors)} doors; the standard wiring has pins for "
            f"{len(STANDARD_DOORS)} (firmware_config/wiring.md): write its file by hand"
        )
    made = datetime.now(UTC).replace(microsecond=0).isoformat()
    lines = [
        f"# Varco edge configuration for {device_id}, written by the gateway at {made}.",
        "# It holds the device's allow-list key: install it as /etc/varco/edge.yaml, owner root,",
        "# group varco, mode 640 (firmware_config/pi-setup.md). Pins: the standard wiring of",
        "# firmware_config/wiring.md. Run: varco edge --config /etc/varco/edge.yaml",
        f"device_id: {_v(device_id)}",
        f"site: {_v(site)}",
        *_broker(broker),
        'pin_factory: "default"',
        f"allowlist_key: {_v(allowlist_key)}",
        f"state_dir: {_v(STATE_DIR)}",
    ]
    used: set[int] = set()
    lines.append("doors:" if doors else "doors: []")
    for door, pins in zip(doors, STANDARD_DOORS, strict=False):
        lines += _door(door, pins)
        used.update(pins.pins())
    free = [pin for pin in DESK_PINS if pin not in used]
    if len(desks) > len(free):
        raise WiringError(
            f"device {device_id!r} has {len(desks)} desks; the standard wiring has pins for "
            f"{len(free)} beside its doors (firmware_config/wiring.md): write its file by hand"
        )
    lines.append("desks:" if desks else "desks: []")
    for desk, pin in zip(desks, free, strict=False):
        lines += [
            f"  - id: {_v(desk)}",
            '    sensor: "pressure_mat"  # or pir, or ultrasonic (firmware_config/wiring.md)',
            f"    pin: {_pin(pin)}, mat to ground",
        ]
    return "\n".join(lines) + "\n"


def _broker(broker: Broker) -> list[str]:
    lines = ["broker:", f"  host: {_v(broker.host)}", f"  port: {broker.port}"]
    if broker.username is not None:
        lines.append(f"  username: {_v(broker.username)}")
        if broker.password is not None:
            lines.append(f"  password: {_v(broker.password)}")
        else:
            lines.append("  # password: the one shown once when the device was created")
    if broker.tls:
        ca_file = f"ca_file: {_v(broker.tls_ca_file)}" if broker.tls_ca_file else ""
        lines.append(f"  tls: {{{ca_file}}}")
    return lines


def _door(door: DoorSpec, pins: DoorPins) -> list[str]:
    chip_select = (8, 7)[pins.spi_device]
    return [
        f"  - id: {_v(door.id)}",
        "    reader:",
        f'      kind: "mfrc522"  # RC522 on SPI0 CE{pins.spi_device}: '
        f"BCM {chip_select}, header pin {HEADER_PIN[chip_select]}",
        f"      spi_device: {pins.spi_device}",
        f"      reset_pin: {_pin(pins.reset)}",
        f"    relay_pin: {_pin(pins.relay)}, to the relay board's IN",
        "    relay_active_high: false  # most opto-isolated relay boards switch on a low input",
        f"    unlock_seconds: {_v(door.unlock_seconds)}",
        f"    contact_pin: {_pin(pins.contact)}, reed switch to ground",
        f"    exit_button_pin: {_pin(pins.exit_button)}, button to ground",
        f"    green_led_pin: {_pin(pins.green_led)}, through 330 ohm",
        f"    red_led_pin: {_pin(pins.red_led)}, through 330 ohm",
        f"    buzzer_pin: {_pin(pins.buzzer)}, active buzzer",
    ]
