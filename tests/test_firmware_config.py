"""firmware_config/ as a maker uses it: wiring tables, systemd unit, setup notes, index."""

from __future__ import annotations

import errno
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from edge_agent.config import (
    EdgeConfig,
    Mfrc522ReaderConfig,
    PirDeskConfig,
    PressureMatDeskConfig,
    UltrasonicDeskConfig,
    load_config,
)
from edge_agent.errors import ReaderError
from edge_agent.readers import open_reader
from gateway.api.devices import DeviceCreated
from gateway.device_config import DESK_PINS, STANDARD_DOORS, Broker, DoorSpec, render_config
from tests.conftest import need
from tests.edge_agent.emulated_rc522 import Rc522Chip, SpiBus
from varco.cli import main
from varco.protocol import Channel, CommandAction

FIRMWARE = Path(__file__).parents[1] / "firmware_config"
EXAMPLES = sorted((FIRMWARE / "examples").glob("*.yaml"))

# The Pi's 40-pin header: BCM GPIO number -> header (physical) pin. Fixed by the hardware.
HEADER_PIN = {
    0: 27, 1: 28, 2: 3, 3: 5, 4: 7, 5: 29, 6: 31, 7: 26, 8: 24, 9: 21, 10: 19, 11: 23, 12: 32,
    13: 33, 14: 8, 15: 10, 16: 36, 17: 11, 18: 12, 19: 35, 20: 38, 21: 40, 22: 15, 23: 16,
    24: 18, 25: 22, 26: 37, 27: 13,
}  # fmt: skip
SPI0_CHIP_SELECT = {0: 8, 1: 7}  # spi_device -> BCM: CE0, CE1
POWER_PINS = {
    "GND": {"6", "9", "14", "20", "25", "30", "34", "39"},
    "3.3": {"1", "17"},
    "5": {"2", "4"},
}


@dataclass(frozen=True)
class Row:
    """One row of a wiring table."""

    header_pin: str
    bcm: int | None
    signal: str


def wiring_rows() -> list[Row]:
    """Read every table in wiring.md with 'Header pin', 'BCM' and 'Signal' columns."""
    rows: list[Row] = []
    columns: dict[str, int] | None = None
    for line in (FIRMWARE / "wiring.md").read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            columns = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if columns is None:
            columns = {name: i for i, name in enumerate(cells)}
            continue
        if set(line) <= set("|-: "):
            continue  # the separator under the header
        bcm = re.match(r"\d+", cells[columns["BCM"]])
        rows.append(
            Row(
                header_pin=cells[columns["Header pin"]],
                bcm=int(bcm.group()) if bcm else None,
                signal=cells[columns["Signal"]],
            )
        )
    return rows


def used_pins(config: EdgeConfig) -> list[tuple[str, int]]:
    """Return (a word the wiring table uses for the signal, BCM number) for each pin in use."""
    pins: list[tuple[str, int]] = []
    for door in config.doors:
        named = {
            "relay": door.relay_pin,
            "reed switch": door.contact_pin,
            "exit button": door.exit_button_pin,
            "green LED": door.green_led_pin,
            "red LED": door.red_led_pin,
            "buzzer": door.buzzer_pin,
        }
        pins += [(word, pin) for word, pin in named.items() if pin is not None]
        if isinstance(door.reader, Mfrc522ReaderConfig):
            pins.append(("RC522 RST", door.reader.reset_pin))
            pins.append(("RC522 SDA", SPI0_CHIP_SELECT[door.reader.spi_device]))
    for desk in config.desks:
        if isinstance(desk, PressureMatDeskConfig):
            pins.append((f"{desk.id} pressure mat", desk.pin))
        elif isinstance(desk, PirDeskConfig):
            pins.append((f"{desk.id} PIR OUT", desk.pin))
        elif isinstance(desk, UltrasonicDeskConfig):
            pins.append((f"{desk.id} HC-SR04 TRIG", desk.trigger_pin))
            pins.append((f"{desk.id} HC-SR04 ECHO", desk.echo_pin))
    return pins


def test_the_examples_use_pins() -> None:
    assert EXAMPLES
    assert all(used_pins(load_config(example)) for example in EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_pin_an_example_uses_is_in_the_wiring_tables(example: Path) -> None:
    rows = wiring_rows()

    for word, bcm in used_pins(load_config(example)):
        matching = [row for row in rows if row.bcm == bcm and word.lower() in row.signal.lower()]
        assert matching, f"wiring.md has no row with BCM {bcm} for {word!r} ({example.name})"


def test_every_wiring_row_puts_its_bcm_number_on_the_right_header_pin() -> None:
    numbered = [row for row in wiring_rows() if row.bcm is not None]

    assert len(numbered) >= 15
    for row in numbered:
        assert row.bcm is not None
        assert row.header_pin == str(HEADER_PIN[row.bcm]), row


def test_every_supply_row_is_on_a_supply_pin() -> None:
    supplies = [row for row in wiring_rows() if row.bcm is None and row.header_pin != "—"]

    assert len(supplies) >= 8
    for row in supplies:
        kind = re.search(r"GND|3\.3 ?V|\b5 ?V", row.signal)
        assert kind is not None, row
        assert row.header_pin in POWER_PINS[kind.group().rstrip(" V")], row


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_the_examples_comments_name_the_right_header_pins(example: Path) -> None:
    said = re.findall(r"BCM (\d+), header pin (\d+)", example.read_text(encoding="utf-8"))

    assert said
    for bcm, header in said:
        assert HEADER_PIN[int(bcm)] == int(header), f"BCM {bcm} is on {HEADER_PIN[int(bcm)]}"


def unit() -> dict[str, dict[str, list[str]]]:
    """Parse varco-edge.service: section -> key -> values (systemd allows repeated keys)."""
    sections: dict[str, dict[str, list[str]]] = {}
    section: dict[str, list[str]] | None = None
    for raw in (FIRMWARE / "varco-edge.service").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = sections.setdefault(line[1:-1], {})
            continue
        key, equals, value = line.partition("=")
        assert section is not None, f"a line before any [section]: {raw!r}"
        assert equals, f"not a key=value line: {raw!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_the_unit_restarts_on_failure_but_not_on_a_bad_configuration() -> None:
    service = unit()["Service"]

    assert service["Restart"] == ["on-failure"]
    assert service["RestartSec"] == ["2"]
    assert service["RestartPreventExitStatus"] == ["2"]
    assert service["KillSignal"] == ["SIGTERM"]


def test_the_unit_runs_the_agent_as_varco_with_the_device_groups() -> None:
    service = unit()["Service"]

    assert service["User"] == ["varco"]
    assert service["Group"] == ["varco"]
    assert set(service["SupplementaryGroups"][0].split()) == {"gpio", "spi", "dialout", "input"}
    assert re.fullmatch(r"\S+/bin/varco edge --config \S+", service["ExecStart"][0])
    assert unit()["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_unit_lets_the_agent_reach_its_devices_and_no_others() -> None:
    service = unit()["Service"]

    assert "PrivateDevices" not in service  # it would hide /dev/gpiochip* and the rest
    assert service["DevicePolicy"] == ["closed"]  # /dev/null and friends, and these:
    assert sorted(service["DeviceAllow"]) == sorted(
        [
            "char-gpiochip rw",  # lgpio, on every Pi
            "/dev/gpiomem rw",  # older GPIO libraries
            "/dev/gpiomem0 rw",
            "char-spi rw",  # /dev/spidev*: the RC522
            "char-ttyS rw",  # /dev/serial0 on a Pi 3, 4 or Zero 2 (the mini UART)
            "char-ttyAMA rw",  # /dev/serial0 with Bluetooth off; a Pi 5's header UART
            "char-ttyACM rw",  # USB serial readers
            "char-ttyUSB rw",
            "char-input r",  # keyboard-style readers
        ]
    )


def test_the_unit_scores_2_5_or_better_in_systemd_analyze_security() -> None:
    need(shutil.which("systemd-analyze") is not None, "systemd-analyze is not installed")
    path = FIRMWARE / "varco-edge.service"
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    score = re.search(r"Overall exposure level for varco-edge\.service: (\d+\.\d+)", result.stdout)

    assert score is not None, result.stdout + result.stderr
    assert float(score.group(1)) <= 2.5, result.stdout


def test_the_units_state_directory_is_the_configs_default() -> None:
    service = unit()["Service"]
    default = EdgeConfig(device_id="d1", site="milano").state_dir  # a file without state_dir

    assert Path("/var/lib") / service["StateDirectory"][0] == default
    assert service["WorkingDirectory"] == [str(default)]
    for example in EXAMPLES:
        assert load_config(example).state_dir == default


def test_pi_setup_installs_what_the_unit_runs() -> None:
    exec_start = re.fullmatch(r"(\S+) edge --config (\S+)", unit()["Service"]["ExecStart"][0])
    assert exec_start is not None
    program, config = exec_start.groups()
    setup = (FIRMWARE / "pi-setup.md").read_text(encoding="utf-8")

    assert set(re.findall(r"--config (/[^\s`]+)", setup)) == {config}
    assert f"python3 -m venv {Path(program).parents[1]}" in setup
    assert f"{program} edge --config {config}" in setup
    assert "--groups gpio,spi,dialout,input varco" in setup


def test_the_readme_names_every_file_in_the_folder() -> None:
    readme = (FIRMWARE / "README.md").read_text(encoding="utf-8")
    files = [
        path.relative_to(FIRMWARE).as_posix()
        for path in FIRMWARE.rglob("*")
        if path.is_file() and path.name != "README.md" and not path.name.startswith(".")
    ]

    assert len(files) >= 6
    for name in files:
        assert f"`{name}`" in readme, f"README.md does not mention {name}"


# The file the gateway writes (gateway/device_config.py) is wired as wiring.md says.


def gateway_file(tmp_path: Path, doors: int, desks: int) -> EdgeConfig:
    text = render_config(
        device_id="door-ctl-7",
        site="milano",
        allowlist_key="ab" * 32,
        broker=Broker("broker.example.org", 1883),
        doors=[DoorSpec(f"door-{n}", 5.0) for n in range(doors)],
        desks=[f"desk-{n}" for n in range(desks)],
    )
    path = tmp_path / "edge.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_the_gateways_first_door_is_wired_as_the_door_controller_example(tmp_path: Path) -> None:
    example = load_config(FIRMWARE / "examples" / "door-controller.yaml").doors[0]
    written = gateway_file(tmp_path, doors=1, desks=0).doors[0]
    pins = ("relay_pin", "contact_pin", "exit_button_pin", "green_led_pin", "red_led_pin")

    assert [getattr(written, pin) for pin in (*pins, "buzzer_pin")] == [
        getattr(example, pin) for pin in (*pins, "buzzer_pin")
    ]
    assert written.reader == Mfrc522ReaderConfig(reset_pin=25)
    assert isinstance(example.reader, Mfrc522ReaderConfig)
    assert (example.reader.spi_device, example.reader.reset_pin) == (0, 25)
    assert written.relay_active_high == example.relay_active_high


def test_every_pin_of_the_gateways_doors_is_in_the_wiring_tables(tmp_path: Path) -> None:
    rows = wiring_rows()
    config = gateway_file(tmp_path, doors=2, desks=0)

    for word, bcm in used_pins(config):
        matching = [row for row in rows if row.bcm == bcm and word.lower() in row.signal.lower()]
        assert matching, f"wiring.md has no row with BCM {bcm} for {word!r}"
    second = [row for row in rows if row.signal.lower().startswith("second")]
    assert {row.bcm for row in second} == {7, *STANDARD_DOORS[1].pins()}


def test_wiring_md_lists_the_gateways_desk_pins_in_order() -> None:
    text = (FIRMWARE / "wiring.md").read_text(encoding="utf-8")
    listed = re.search(r"^BCM ((?:\d+, )+\d+)\.$", text, re.MULTILINE)

    assert listed is not None
    assert tuple(int(pin) for pin in listed.group(1).split(", ")) == DESK_PINS


# What the docs quote is what the code says.


def pi_setup() -> str:
    return (FIRMWARE / "pi-setup.md").read_text(encoding="utf-8")


def test_pi_setup_quotes_what_varco_edge_says_of_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quoted = re.search(r"names the field:\n\n```\n(.*?)```", pi_setup(), re.DOTALL)
    assert quoted is not None
    path = tmp_path / "edge.yaml"
    path.write_text("device_id: door-1\nsite: milano\ndoors:\n  - id: front\n    relay_pin: 40\n")

    assert main(["edge", "--config", str(path)]) == 2
    said = capsys.readouterr().err.replace(str(path), "/etc/varco/edge.yaml")
    assert said == quoted.group(1)


async def test_pi_setup_quotes_what_an_rc522_that_cannot_start_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spi_bus = SpiBus()  # the emulated chip behind spidev (tests/edge_agent/emulated_rc522.py)
    monkeypatch.setitem(sys.modules, "spidev", spi_bus.module())
    said = []
    spi_bus.refuse(errno.EACCES)  # /dev/spidev0.0 there, the user not in the spi group
    spi_bus.wire(Rc522Chip(reset_line=lambda: False), device=1)  # on the bus, not answering
    for config in (Mfrc522ReaderConfig(), Mfrc522ReaderConfig(spi_device=1)):
        with pytest.raises(ReaderError) as raised:
            open_reader(config, pin_factory=MockFactory())
        said.append(str(raised.value).replace("SPI 0.1", "SPI 0.0"))
    monkeypatch.delitem(sys.modules, "spidev")  # the real package, on a machine without SPI
    with pytest.raises(ReaderError) as raised:
        open_reader(Mfrc522ReaderConfig(), pin_factory=MockFactory())
    said.append(str(raised.value))

    for message in said:
        assert f"- `{message}`" in pi_setup()


def test_the_config_files_mode_is_the_same_everywhere(tmp_path: Path) -> None:
    written = render_config(
        device_id="d1", site="milano", allowlist_key="ab" * 32, broker=Broker("b", 1883)
    )
    api = DeviceCreated.model_fields["config_yaml"].description or ""

    assert "sudo install -o root -g varco -m 640 edge.yaml /etc/varco/edge.yaml" in pi_setup()
    assert "owner root,\n# group varco, mode 640" in written
    assert "owner root, group varco, mode 640" in api
    assert "0600" not in api + written + pi_setup()


def test_the_pi_extra_brings_no_rpi_gpio() -> None:
    # pip would install RPi.GPIO over rpi-lgpio at each update, and a Pi 5 loses its GPIO.
    def requirements(name: str, extras: tuple[str, ...] = ()) -> set[str]:
        found: set[str] = set()
        for requirement in metadata.requires(name) or []:
            parsed = Requirement(requirement)
            if parsed.marker is None or any(
                parsed.marker.evaluate({"extra": extra}) for extra in extras or ("",)
            ):
                found.add(canonicalize_name(parsed.name))
        return found

    seen: set[str] = set()
    todo = requirements("varco", ("pi",)) | requirements("varco", ("edge",))
    while todo:
        name = todo.pop()
        if name == "varco" or name in seen:
            continue
        seen.add(name)
        todo |= requirements(name)

    assert {"gpiozero", "lgpio", "spidev", "evdev", "pyserial"} <= seen
    assert not {"rpi-gpio", "mfrc522"} & seen


def test_the_design_lists_the_channels_the_commands_and_the_edge_modules() -> None:
    design = (FIRMWARE.parent / "docs" / "design.md").read_text(encoding="utf-8")
    rows = {
        cells[0].strip("` "): cells
        for line in design.splitlines()
        if line.startswith("| `") and (cells := line.strip("|").split("|"))
    }

    assert {channel.value for channel in Channel} <= rows.keys()
    command = rows["command"][-1]
    assert all(action.value in command for action in CommandAction)
    assert "lockdown travels in the allow-list" in command
    assert "overrides" in rows["config"][-1]
    edge_row = rows["edge_agent/"][1]
    named = set(re.findall(r"`(\w+)`", edge_row))
    modules = {path.stem for path in (FIRMWARE.parent / "edge_agent").glob("*.py")}
    assert named == modules - {"__init__", "errors"}
