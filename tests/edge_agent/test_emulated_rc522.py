"""The real ``mfrc522`` package against the emulated chip: the emulation is what a driver
written for the hardware expects, and the package's costly wait loop shows."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import pytest

from tests.edge_agent.emulated_cards import Card, crc_a
from tests.edge_agent.emulated_rc522 import COM_IRQ, TIMER_IRQ, Gpio, Rc522Chip, SpiBus

RESET_PIN = 25
KEY = [0xFF] * 6


def library(spi_bus: SpiBus, rpi_gpio: Gpio, chip: Rc522Chip | None = None) -> Any:
    """Open the package's MFRC522 on SPI 0.0, with its reset pin on GPIO 25 (BCM)."""
    if chip is not None:
        spi_bus.wire(chip)
    driver = importlib.import_module("mfrc522")
    return driver.MFRC522(bus=0, device=0, pin_mode=rpi_gpio.BCM, pin_rst=RESET_PIN)


@pytest.fixture
def chip(rpi_gpio: Gpio) -> Rc522Chip:
    return Rc522Chip(reset_line=lambda: rpi_gpio.level(RESET_PIN))


def test_the_library_reads_a_4_byte_uid_and_a_block(
    spi_bus: SpiBus, rpi_gpio: Gpio, chip: Rc522Chip
) -> None:
    reader = library(spi_bus, rpi_gpio, chip)
    chip.put(Card("04A22B1A", blocks={8: bytes(range(16))}))

    assert reader.MFRC522_Request(reader.PICC_REQIDL) == (reader.MI_OK, 16)  # ATQA: 16 bits
    status, serial = reader.MFRC522_Anticoll()
    assert (status, serial) == (reader.MI_OK, [0x04, 0xA2, 0x2B, 0x1A, 0x97])  # and its BCC
    assert reader.MFRC522_SelectTag(serial) == 0x08  # SAK: MIFARE Classic 1K
    assert reader.MFRC522_Auth(reader.PICC_AUTHENT1A, 8, KEY, serial) == reader.MI_OK
    assert reader.MFRC522_Read(8) == list(range(16))
    reader.MFRC522_StopCrypto1()
    assert not reader.Read_MFRC522(reader.Status2Reg) & 0x08


def test_the_library_is_refused_a_block_with_the_wrong_key(
    spi_bus: SpiBus, rpi_gpio: Gpio, chip: Rc522Chip
) -> None:
    reader = library(spi_bus, rpi_gpio, chip)
    chip.put(Card("04A22B1A", key=bytes.fromhex("A0A1A2A3A4A5")))
    reader.MFRC522_Request(reader.PICC_REQIDL)
    _, serial = reader.MFRC522_Anticoll()
    reader.MFRC522_SelectTag(serial)

    assert reader.MFRC522_Auth(reader.PICC_AUTHENT1A, 8, KEY, serial) == reader.MI_ERR
    assert reader.MFRC522_Read(8) is None


def test_the_library_sees_a_7_byte_uid_in_two_cascade_levels(
    spi_bus: SpiBus, rpi_gpio: Gpio, chip: Rc522Chip
) -> None:
    reader = library(spi_bus, rpi_gpio, chip)
    chip.put(Card("04A22B1A5C8000", sak=0x00))  # an NTAG or Ultralight

    assert reader.MFRC522_Request(reader.PICC_REQIDL)[0] == reader.MI_OK
    status, level1 = reader.MFRC522_Anticoll()
    assert (status, level1) == (reader.MI_OK, [0x88, 0x04, 0xA2, 0x2B, 0x05])  # cascade tag
    assert reader.MFRC522_SelectTag(level1) == 0x04  # the UID goes on
    status, level2, bits = reader.MFRC522_ToCard(reader.PCD_TRANSCEIVE, [0x95, 0x20])
    assert (status, level2, bits) == (reader.MI_OK, [0x1A, 0x5C, 0x80, 0x00, 0xC6], 40)


def test_a_card_held_on_the_reader_answers_every_other_reqa(
    spi_bus: SpiBus, rpi_gpio: Gpio, chip: Rc522Chip
) -> None:
    # ISO 14443-3: a selected card that hears REQA goes back to IDLE without a word.
    reader = library(spi_bus, rpi_gpio, chip)
    chip.put(Card("04A22B1A"))
    answers = []
    for _ in range(4):
        status, _ = reader.MFRC522_Request(reader.PICC_REQIDL)
        answers.append(status == reader.MI_OK)
        if answers[-1]:
            reader.MFRC522_SelectTag(reader.MFRC522_Anticoll()[1])

    assert answers == [True, False, True, False]


def test_two_cards_in_the_field_collide_in_the_librarys_anticollision(
    spi_bus: SpiBus, rpi_gpio: Gpio, chip: Rc522Chip
) -> None:
    reader = library(spi_bus, rpi_gpio, chip)
    chip.put(Card("04A22B1A"))
    chip.put(Card("04A23B1A"))

    assert reader.MFRC522_Request(reader.PICC_REQIDL)[0] == reader.MI_OK  # same ATQA
    assert reader.MFRC522_Anticoll()[0] == reader.MI_ERR
    assert reader.Read_MFRC522(reader.ErrorReg) & 0x08  # CollErr
    assert reader.Read_MFRC522(reader.CollReg) & 0x1F == 21  # 0x2B, 0x3B: bit 4 of byte 2, the 21st


def test_a_card_pulled_mid_read_leaves_the_library_without_an_answer(
    spi_bus: SpiBus, rpi_gpio: Gpio, chip: Rc522Chip
) -> None:
    reader = library(spi_bus, rpi_gpio, chip)
    card = chip.put(Card("04A22B1A", leaves_after=1))  # answers REQA, then it is gone

    assert reader.MFRC522_Request(reader.PICC_REQIDL)[0] == reader.MI_OK
    assert card not in chip.field
    assert reader.MFRC522_Anticoll() == (reader.MI_ERR, [])


def test_the_library_keeps_reading_after_its_timer_said_no_card(
    spi_bus: SpiBus, rpi_gpio: Gpio, chip: Rc522Chip
) -> None:
    # MFRC522_ToCard waits with `~` for `not`: it reads ComIrqReg 2,000 times whatever the
    # chip says, where the timer interrupt says after 15 ms that no card answered.
    reader = library(spi_bus, rpi_gpio, chip)
    before = chip.transfers

    assert reader.MFRC522_Request(reader.PICC_REQIDL)[0] == reader.MI_ERR

    assert chip.transfers - before == 2013
    assert chip.bus_seconds > 0.015 * 2  # the chip's time went well past its 15 ms timer
    assert reader.Read_MFRC522(COM_IRQ) & TIMER_IRQ


def test_the_librarys_crc_is_the_chips_crc_a(
    spi_bus: SpiBus, rpi_gpio: Gpio, chip: Rc522Chip
) -> None:
    reader = library(spi_bus, rpi_gpio, chip)

    assert reader.CalulateCRC([0x50, 0x00]) == [0x57, 0xCD]  # HLTA, from ISO/IEC 14443-3
    # CalcCRC runs until another command: the package's callers always send one in between.
    reader.Write_MFRC522(reader.CommandReg, reader.PCD_IDLE)
    assert reader.CalulateCRC([0x93, 0x70, 1, 2, 3, 4, 4]) == crc_a([0x93, 0x70, 1, 2, 3, 4, 4])


def test_the_library_powers_the_chip_up_through_the_reset_pin(
    spi_bus: SpiBus, rpi_gpio: Gpio
) -> None:
    chip = Rc522Chip(reset_line=lambda: rpi_gpio.level(RESET_PIN))
    rpi_gpio.mode = rpi_gpio.BCM
    rpi_gpio.levels[RESET_PIN] = 0  # held in reset, as RPi.GPIO leaves an output it sets up
    assert chip.transfer([0x80 | (0x37 << 1), 0]) == [0, 0]  # powered down: reads nothing

    reader = library(spi_bus, rpi_gpio, chip)

    assert rpi_gpio.levels[RESET_PIN] == 1
    assert chip.resets == 1
    assert reader.Read_MFRC522(reader.VersionReg) == 0x92  # MFRC522 version 2.0
    reader.Close_MFRC522()
    assert rpi_gpio.cleaned_up


def test_a_missing_spi_device_fails_as_spidev_does(spi_bus: SpiBus, rpi_gpio: Gpio) -> None:
    with pytest.raises(FileNotFoundError) as emulated:
        library(spi_bus, rpi_gpio)  # nothing wired on SPI 0.0
    del sys.modules["spidev"]
    real = importlib.import_module("spidev")  # the package, on a machine without SPI
    with pytest.raises(FileNotFoundError) as measured:
        real.SpiDev().open(9, 9)

    assert emulated.value.errno == measured.value.errno
    assert emulated.value.strerror == measured.value.strerror
