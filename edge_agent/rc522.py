"""The RC522 (NXP MFRC522) on SPI, driven from its datasheet: Varco's own thin driver.

Not the ``mfrc522`` package, for three reasons. Its ``MFRC522_ToCard`` waits with ``~`` where
``not`` was meant, so it ignores the chip's timer: every poll with no card reads the interrupt
register 2,000 times (``bench/rc522_idle.py`` measures it). It drives the reset pin through
``RPi.GPIO``, outside gpiozero's pin factory. And it requires ``RPi.GPIO``, which pip then
installs over ``rpi-lgpio`` on a Pi 5 at every update, after which GPIO stops working there.

This module needs only ``spidev`` (imported when a reader opens) and a gpiozero output for the
reset pin. A transceive starts the chip's own timer (5 ms) and sleeps between looks at the
interrupt register, so an empty field costs a dozen SPI transfers and no busy loop. Cards are
found by WUPA, bit-oriented anticollision (two cards in the field: the one with a 1 at the first
differing bit wins, as ISO/IEC 14443-3 describes), select at each cascade level, then HLTA.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gpiozero import DigitalOutputDevice, GPIOZeroError

from edge_agent.errors import ReaderError

# Registers (datasheet section 9.2) and commands (10.3).
_COMMAND, _COM_IRQ, _ERROR, _FIFO_DATA, _FIFO_LEVEL = 0x01, 0x04, 0x06, 0x09, 0x0A
_CONTROL, _BIT_FRAMING, _COLL, _MODE, _TX_CONTROL, _TX_AUTO = 0x0C, 0x0D, 0x0E, 0x11, 0x14, 0x15
_T_MODE, _T_PRESCALER, _T_RELOAD_H, _T_RELOAD_L, _VERSION = 0x2A, 0x2B, 0x2C, 0x2D, 0x37
_IDLE, _TRANSCEIVE, _SOFT_RESET = 0x00, 0x0C, 0x0F
_RX_IRQ, _TIMER_IRQ = 0x20, 0x01
_COLL_ERR, _ERRORS = 0x08, 0x1B  # CollErr; BufferOvfl, CollErr, ParityErr, ProtocolErr
_COLL_POS_NOT_VALID = 0x20

# ISO/IEC 14443-3 type A.
_WUPA, _HLTA, _SEL = 0x52, 0x50, (0x93, 0x95, 0x97)
_CASCADE_TAG, _SAK_UID_INCOMPLETE = 0x88, 0x04

_SPI_HZ = 1_000_000
_START_SECONDS = 0.05  # after NRSTPD rises: the crystal oscillator starts (datasheet 8.8.2)
# TAuto, prescaler 0xD3E: 13.56 MHz / (2 * 3390 + 1) = 2 kHz; reload 9: 10 ticks = 5 ms.
# A card answers a REQA, an anticollision or a select well within 1 ms.
_TIMER = ((_T_MODE, 0x8D), (_T_PRESCALER, 0x3E), (_T_RELOAD_H, 0), (_T_RELOAD_L, 9))
_FIRST_LOOK = 0.001  # seconds after StartSend: most answers are in by then
_LOOK_EVERY = 0.002
_STUCK_SECONDS = 0.25  # neither an answer nor the 5 ms timer by then: the chip is gone


class BadReadError(ValueError):
    """A read that went wrong (a card pulled away mid-read, a garbled frame); no tap."""


class SpiPort(Protocol):
    """The part of ``spidev.SpiDev`` the driver uses."""

    def xfer2(self, data: list[int], /) -> list[int]: ...
    def close(self) -> None: ...


class ResetLine(Protocol):
    """The NRSTPD pin: a gpiozero output device."""

    def on(self) -> None: ...
    def off(self) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Answer:
    """What the chip received: the FIFO's bytes and how the frame ended."""

    data: list[int]
    last_bits: int  # valid bits in the last byte, 0 for all 8
    errors: int
    coll: int  # CollReg


def crc_a(data: Sequence[int]) -> list[int]:
    """ISO/IEC 14443-3 CRC_A of ``data``: two bytes, low first (computed here: no SPI)."""
    crc = 0x6363
    for byte in data:
        byte ^= crc & 0xFF
        byte = (byte ^ (byte << 4)) & 0xFF
        crc = (crc >> 8) ^ (byte << 8) ^ (byte << 3) ^ (byte >> 4)
    return [crc & 0xFF, crc >> 8]


def _bits(data: Sequence[int]) -> list[int]:
    return [(byte >> i) & 1 for byte in data for i in range(8)]  # LSB first, as on the air


def _bytes(bits: Sequence[int]) -> list[int]:
    out = [0] * ((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        out[i // 8] |= bit << (i % 8)
    return out


class Rc522:
    """One RC522: ``read_uid()`` returns the UID of a card in its field, or None."""

    def __init__(
        self,
        spi: SpiPort,
        *,
        reset: ResetLine | None = None,
        where: str = "mfrc522",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.where = where
        self._spi = spi
        self._reset = reset
        self._sleep = sleep
        self._clock = clock

    @classmethod
    def open(cls, *, bus: int, device: int, reset_pin: int, pin_factory: Any) -> Rc522:
        """Open ``/dev/spidev<bus>.<device>``, power the chip up through ``reset_pin``, check
        that it answers and set it up; raise ``ReaderError`` saying what is wrong."""
        where = f"mfrc522 on SPI {bus}.{device}"
        node = f"/dev/spidev{bus}.{device}"
        try:
            # Imported only now: a Pi without an RC522 needs no spidev.
            spidev = importlib.import_module("spidev")
        except ImportError as exc:
            raise ReaderError(
                f"{where}: the spidev package is missing; on the Pi run: pip install 'varco[pi]'"
            ) from exc
        spi = spidev.SpiDev()
        try:
            spi.open(bus, device)
        except OSError as exc:
            raise ReaderError(f"{where}: cannot open {node}: {_spi_reason(exc)}") from exc
        spi.max_speed_hz = _SPI_HZ
        spi.mode = 0
        try:
            reset: ResetLine = DigitalOutputDevice(
                reset_pin, initial_value=False, pin_factory=pin_factory
            )
        except (GPIOZeroError, OSError, RuntimeError) as exc:
            spi.close()
            raise ReaderError(
                f"{where}: cannot drive the reset pin, GPIO {reset_pin}: {_gpio_reason(exc)}"
            ) from exc
        chip = cls(spi, reset=reset, where=where)
        try:
            chip.start()
        except ReaderError:
            chip.close()
            raise
        return chip

    def start(self) -> None:
        """Reset the chip (by its pin if there is one), check that it answers, set it up."""
        if self._reset is not None:
            self._reset.off()
            self._sleep(0.001)
            self._reset.on()
        else:
            self._write(_COMMAND, _SOFT_RESET)
        self._sleep(_START_SECONDS)
        version = self._read(_VERSION)
        if version in (0x00, 0xFF):
            raise ReaderError(
                f"{self.where}: no RC522 answers (its version register reads {version:#04x}): "
                "check the wiring and that it has 3.3 V"
            )
        for register, value in _TIMER:
            self._write(register, value)
        self._write(_TX_AUTO, 0x40)  # 100 % ASK modulation, as type A wants
        self._write(_MODE, 0x3D)  # CRC preset 0x6363 (CRC_A)
        self._write(_TX_CONTROL, self._read(_TX_CONTROL) | 0x03)  # antenna on

    def read_uid(self) -> str | None:
        """Return the UID (hex) of one card in the field, or None; raise ``BadReadError``."""
        if self.transceive([_WUPA], last_bits=7) is None:
            return None  # nothing in the field (two kinds of card may collide here: any answer)
        uid: list[int] = []
        for sel in _SEL:
            cln = self._anticollision(sel)
            sak = self._select(sel, cln)
            if not sak & _SAK_UID_INCOMPLETE:
                uid += cln[:4]
                break
            if cln[0] != _CASCADE_TAG:
                raise BadReadError("the card said its UID goes on, without the cascade tag")
            uid += cln[1:4]
        else:
            raise BadReadError("a UID longer than three cascade levels")
        # Halted, the card answers only WUPA: every poll still sees a card left on the reader.
        self.transceive([_HLTA, 0x00, *crc_a([_HLTA, 0x00])])
        return bytes(uid).hex().upper()

    def _anticollision(self, sel: int) -> list[int]:
        known: list[int] = []  # bits of the 40 (4 UID bytes and the check byte) known so far
        while len(known) < 40:
            count = len(known)
            nvb = ((2 + count // 8) << 4) | (count % 8)
            answer = self.transceive(
                [sel, nvb, *_bytes(known)], last_bits=count % 8, align=count % 8
            )
            if answer is None:
                raise BadReadError("the card left the field during anticollision")
            received = _bits(answer.data)[count % 8 :]
            if answer.last_bits:
                del received[len(received) - 8 + answer.last_bits :]
            if answer.errors & ~_COLL_ERR:
                raise BadReadError(f"anticollision answer with errors {answer.errors:#04x}")
            if not answer.errors & _COLL_ERR:
                known += received
                break
            if answer.coll & _COLL_POS_NOT_VALID:
                raise BadReadError("a collision the chip could not place")
            position = (answer.coll & 0x1F or 32) - 1 - count % 8  # in ``received``
            if position < 0:
                raise BadReadError("anticollision made no progress")
            known += [*received[:position], 1]  # two cards differ here: take the one with a 1
        cln = _bytes(known[:40])
        if len(known) < 40 or cln[0] ^ cln[1] ^ cln[2] ^ cln[3] != cln[4]:
            raise BadReadError("anticollision answer with a wrong check byte")
        return cln

    def _select(self, sel: int, cln: list[int]) -> int:
        frame = [sel, 0x70, *cln]
        answer = self.transceive([*frame, *crc_a(frame)])
        if answer is None:
            raise BadReadError("the card left the field during select")
        sak = answer.data
        if answer.errors or len(sak) != 3 or answer.last_bits or crc_a(sak[:1]) != sak[1:]:
            raise BadReadError("a garbled answer to select")
        return sak[0]

    def transceive(
        self, data: Sequence[int], *, last_bits: int = 0, align: int = 0
    ) -> Answer | None:
        """Send a frame and wait for the answer, or for the chip's timer: then return None."""
        self._write(_COMMAND, _IDLE)
        self._write(_COM_IRQ, 0x7F)  # Set1 = 0: clear every interrupt bit
        self._write(_FIFO_LEVEL, 0x80)  # flush
        self._xfer([_FIFO_DATA << 1, *data])
        self._write(_BIT_FRAMING, (align << 4) | last_bits)
        self._write(_COMMAND, _TRANSCEIVE)
        self._write(_BIT_FRAMING, 0x80 | (align << 4) | last_bits)  # StartSend
        stuck_at = self._clock() + _STUCK_SECONDS
        self._sleep(_FIRST_LOOK)
        while True:
            irq = self._read(_COM_IRQ)
            if irq & 0x80:  # Set1 always reads 0: this is a bus with nothing on it
                raise ReaderError(f"{self.where}: the RC522 stopped answering (reads {irq:#04x})")
            if irq & (_RX_IRQ | _TIMER_IRQ):
                break
            if self._clock() > stuck_at:
                raise ReaderError(
                    f"{self.where}: the RC522 stopped answering (its timer never fired)"
                )
            self._sleep(_LOOK_EVERY)
        if not irq & _RX_IRQ:
            return None
        _, errors, level, control, coll = self._xfer(
            [_r(_ERROR), _r(_FIFO_LEVEL), _r(_CONTROL), _r(_COLL), 0]
        )
        received = self._xfer([_r(_FIFO_DATA)] * level + [0])[1:] if level else []
        return Answer(received, control & 0x07, errors & _ERRORS, coll)

    def close(self) -> None:
        """Turn the antenna off, power the chip down and let go of SPI and the reset pin."""
        with contextlib.suppress(OSError):  # closing a reader that failed: the bus may be gone
            self._write(_TX_CONTROL, 0x80)
        if self._reset is not None:
            self._reset.off()  # hard power-down: the chip draws a few uA
            self._reset.close()
        self._spi.close()

    def _read(self, register: int) -> int:
        return self._xfer([_r(register), 0])[1]

    def _write(self, register: int, value: int) -> None:
        self._xfer([register << 1, value])

    def _xfer(self, data: list[int]) -> list[int]:
        return self._spi.xfer2(data)


def _r(register: int) -> int:
    return 0x80 | (register << 1)


def _spi_reason(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "no such device: turn SPI on (sudo raspi-config nonint do_spi 0) and reboot"
    if exc.errno == errno.EACCES:
        return "permission denied (add the user to the 'spi' group)"
    if exc.errno == errno.EBUSY:
        return "in use by another program"
    return os.strerror(exc.errno) if exc.errno else str(exc)


def _gpio_reason(exc: Exception) -> str:
    # gpiozero's message names the pin and the device; say which kind of trouble it is too.
    return f"{type(exc).__name__}: {exc}"
