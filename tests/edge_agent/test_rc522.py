"""Varco's RC522 driver and reader, on the emulated chip behind ``spidev`` (the same chip the
real ``mfrc522`` package is checked against in test_emulated_rc522.py), with the reset pin on
gpiozero's MockFactory."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import random
import sys
from collections.abc import Iterator

import pytest
from gpiozero import DigitalOutputDevice
from gpiozero.pins.mock import MockFactory

from edge_agent.config import Mfrc522ReaderConfig
from edge_agent.errors import EdgeError
from edge_agent.rc522 import Rc522, crc_a
from edge_agent.readers import Mfrc522Reader, ReaderError, open_reader
from tests.edge_agent import emulated_cards
from tests.edge_agent.emulated_cards import Card
from tests.edge_agent.emulated_rc522 import Rc522Chip, SpiBus

RESET_PIN = 25
HLTA = [0x50, 0x00, 0x57, 0xCD]


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    factory = MockFactory()
    yield factory
    factory.reset()


@pytest.fixture
def chip(spi_bus: SpiBus, factory: MockFactory) -> Rc522Chip:
    """An RC522 on SPI 0.0, its NRSTPD on GPIO 25."""
    pin = factory.pin(RESET_PIN)
    return spi_bus.wire(Rc522Chip(reset_line=lambda: bool(pin.state)))


@contextlib.contextmanager
def rc522_reader(
    factory: MockFactory, *, hold_off_seconds: float = 0.0, poll_seconds: float = 0.01
) -> Iterator[Mfrc522Reader]:
    config = Mfrc522ReaderConfig(
        reset_pin=RESET_PIN, poll_seconds=poll_seconds, hold_off_seconds=hold_off_seconds
    )
    reader = open_reader(config, pin_factory=factory)
    assert isinstance(reader, Mfrc522Reader)
    with reader:
        yield reader


async def tap(reader: Mfrc522Reader) -> str:
    return await asyncio.wait_for(reader.read(), 2.0)


async def no_tap(reader: Mfrc522Reader, seconds: float = 0.15) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(), seconds)


@pytest.mark.parametrize(
    ("uid", "sak"),
    [
        pytest.param("04A22B1A", 0x08, id="4 bytes, MIFARE Classic"),
        pytest.param("04A22B1A5C8000", 0x00, id="7 bytes, NTAG"),
        pytest.param("04A22B1A5C80001122AB", 0x08, id="10 bytes"),
    ],
)
async def test_the_reader_reports_a_cards_whole_uid(
    chip: Rc522Chip, factory: MockFactory, uid: str, sak: int
) -> None:
    with rc522_reader(factory) as reader:
        chip.put(Card(uid, sak=sak))

        assert await tap(reader) == uid
        assert reader.bad_reads == 0


async def test_a_card_held_on_the_reader_is_one_tap_until_it_was_away(
    chip: Rc522Chip, factory: MockFactory
) -> None:
    card = Card("04A22B1A")
    with rc522_reader(factory, hold_off_seconds=0.3) as reader:
        chip.put(card)
        assert await tap(reader) == "04A22B1A"
        halts = chip.frames.count(HLTA)
        await no_tap(reader, 0.5)  # held longer than the hold-off: still one tap
        assert chip.frames.count(HLTA) >= halts + 5  # read again and halted at each poll

        chip.take(card)
        await asyncio.sleep(0.4)
        chip.put(card)
        assert await tap(reader) == "04A22B1A"


async def test_two_cards_in_the_field_are_one_tap_for_the_card_anticollision_picks(
    chip: Rc522Chip, factory: MockFactory
) -> None:
    # 0x2B and 0x3B first differ in bit 4: the card with a 1 there is selected, every time.
    low, high = Card("04A22B1A"), Card("04A23B1A")
    with rc522_reader(factory, hold_off_seconds=5.0) as reader:
        chip.put(low)
        chip.put(high)

        assert await tap(reader) == "04A23B1A"
        await no_tap(reader)
        assert reader.bad_reads == 0

        chip.take(high)
        assert await tap(reader) == "04A22B1A"  # another card: a tap at once


async def test_two_7_byte_cards_that_share_their_first_bytes_are_told_apart(
    chip: Rc522Chip, factory: MockFactory
) -> None:
    with rc522_reader(factory) as reader:
        chip.put(Card("04A22B1A5C8000", sak=0))
        chip.put(Card("04A22B1A5C8001", sak=0))

        assert await tap(reader) == "04A22B1A5C8001"


@pytest.mark.parametrize(
    ("answers", "step"),
    [
        pytest.param(1, "anticollision", id="after the ATQA"),
        pytest.param(2, "select", id="after the anticollision"),
        pytest.param(3, "anticollision", id="between cascade levels"),
    ],
)
async def test_a_card_pulled_mid_read_is_a_bad_read_and_no_tap(
    chip: Rc522Chip,
    factory: MockFactory,
    caplog: pytest.LogCaptureFixture,
    answers: int,
    step: str,
) -> None:
    with caplog.at_level(logging.WARNING), rc522_reader(factory) as reader:
        chip.put(Card("04A22B1A5C8000", sak=0, leaves_after=answers))
        await no_tap(reader, 0.2)

        assert reader.bad_reads == 1
        assert f"mfrc522 on SPI 0.0: bad read (the card left the field during {step})" in [
            record.getMessage() for record in caplog.records
        ]
        chip.put(Card("DEADBEEF"))  # and the reader goes on
        assert await tap(reader) == "DEADBEEF"


async def test_an_empty_field_costs_a_few_transfers_a_poll(
    chip: Rc522Chip, factory: MockFactory
) -> None:
    with rc522_reader(factory) as reader:
        chip.put(Card("04A22B1A"))
        assert await tap(reader) == "04A22B1A"
        chip.field.clear()
        await asyncio.sleep(0.05)
        before, polls = chip.transfers, chip.frames.count([0x52])
        await asyncio.sleep(0.3)
        transfers = chip.transfers - before
        polled = chip.frames.count([0x52]) - polls

    assert polled >= 3
    # 7 writes to start a transceive, then a look at ComIrqReg every 2 ms until the 5 ms
    # timer fires (the mfrc522 package: 2,013).
    assert transfers / polled <= 12


async def test_opening_powers_the_chip_up_through_the_reset_pin_and_closing_down(
    chip: Rc522Chip, factory: MockFactory
) -> None:
    with rc522_reader(factory):
        assert [state.state for state in factory.pin(RESET_PIN).states] == [False, True]
        assert chip.resets == 1

    assert [state.state for state in factory.pin(RESET_PIN).states] == [False, True, False]
    assert chip.transfer([0x80 | (0x37 << 1), 0]) == [0, 0]  # powered down


async def test_a_reset_pin_in_use_is_named(chip: Rc522Chip, factory: MockFactory) -> None:
    other = DigitalOutputDevice(RESET_PIN, pin_factory=factory)

    with pytest.raises(ReaderError, match=r"^mfrc522 on SPI 0\.0: cannot drive the reset pin, "):
        open_reader(Mfrc522ReaderConfig(reset_pin=RESET_PIN), pin_factory=factory)
    other.close()


async def test_a_chip_that_does_not_answer_is_told_from_a_missing_device(
    spi_bus: SpiBus, factory: MockFactory
) -> None:
    spi_bus.wire(Rc522Chip(reset_line=lambda: False))  # wired to the bus, never powered

    with pytest.raises(ReaderError) as raised:
        open_reader(Mfrc522ReaderConfig(), pin_factory=factory)

    assert str(raised.value) == (
        "mfrc522 on SPI 0.0: no RC522 answers (its version register reads 0x00): "
        "check the wiring and that it has 3.3 V"
    )
    assert not factory.pin(RESET_PIN).state  # the reset pin was let go, low


@pytest.mark.parametrize("stand_in", [True, False], ids=["emulated spidev", "real spidev"])
async def test_a_missing_spi_device_says_to_turn_spi_on(
    spi_bus: SpiBus, factory: MockFactory, monkeypatch: pytest.MonkeyPatch, stand_in: bool
) -> None:
    if not stand_in:  # the real package, on this machine that has no /dev/spidev1.1
        monkeypatch.delitem(sys.modules, "spidev")
        importlib.import_module("spidev")

    with pytest.raises(ReaderError) as raised:
        open_reader(Mfrc522ReaderConfig(spi_bus=1, spi_device=1), pin_factory=factory)

    assert str(raised.value) == (
        "mfrc522 on SPI 1.1: cannot open /dev/spidev1.1: no such device: "
        "turn SPI on (sudo raspi-config nonint do_spi 0) and reboot"
    )
    assert isinstance(raised.value, EdgeError)
    assert isinstance(raised.value, OSError)


async def test_without_spidev_the_reader_asks_for_the_pi_extra(
    factory: MockFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "spidev", None)  # import spidev raises ImportError

    with pytest.raises(ReaderError, match=r"spidev package is missing.*pip install 'varco\[pi\]'"):
        open_reader(Mfrc522ReaderConfig(), pin_factory=factory)


async def test_a_chip_that_goes_away_mid_run_raises_on_read(
    chip: Rc522Chip, factory: MockFactory
) -> None:
    with rc522_reader(factory) as reader:
        chip.reset_line = lambda: False  # its supply gone: every register reads 0x00

        with pytest.raises(ReaderError, match="the RC522 stopped answering"):
            await tap(reader)


def test_the_drivers_crc_a_is_the_standards() -> None:
    rng = random.Random(12)
    frames = [[rng.randrange(256) for _ in range(rng.randrange(1, 20))] for _ in range(200)]

    assert crc_a([0x50, 0x00]) == [0x57, 0xCD]
    assert all(crc_a(frame) == emulated_cards.crc_a(frame) for frame in frames)


def test_the_driver_needs_no_mfrc522_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mfrc522", None)
    monkeypatch.setitem(sys.modules, "RPi", None)
    monkeypatch.delitem(sys.modules, "edge_agent.rc522")

    assert importlib.import_module("edge_agent.rc522").Rc522 is not Rc522  # imported again
