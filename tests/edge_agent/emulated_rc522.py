"""An MFRC522 behind ``spidev``, and ``RPi.GPIO`` for its reset pin: hardware below the drivers.

``Rc522Chip`` acts on SPI transfers as the NXP MFRC522 datasheet (rev. 3.9) says, for what a
card reader uses: the register map with its reset values; ComIrqReg/DivIrqReg with their
Set1/Set2 bit (a write sets or clears the bits it marks); ErrorReg, CollReg, Status2Reg; the
64-byte FIFO with FIFOLevelReg's flush; ControlReg's RxLastBits; BitFramingReg's StartSend,
RxAlign and TxLastBits; TxControlReg's antenna drivers; the timer (TModeReg's TAuto, prescaler,
reload); the commands Idle, CalcCRC (CRC_A with ModeReg's preset), Transceive, MFAuthent and
SoftReset; the NRSTPD pin (held low, the chip is powered down and answers zeros; a rising edge
resets it). Cards (``emulated_cards.Card``) in the field answer what the antenna sends.

Time is the given clock (``time.monotonic`` by default) plus the time the SPI bus has spent
clocking bytes (a transfer blocks for ``8 * bytes / max_speed_hz`` on a Pi; here the chip's
time moves on by as much, without spending the CPU): a frame takes its length at 106 kbit/s, a
card answers after the standard's frame delay, the timer counts from the end of a transmission.
A driver that reads ComIrqReg in a loop sees the bits come when they would.

``SpiBus.module()`` is a stand-in ``spidev`` module, ``Gpio.module()`` a stand-in ``RPi.GPIO``;
the tests put them in ``sys.modules`` so that real drivers import them.
"""

from __future__ import annotations

import errno
import os
import time
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tests.edge_agent.emulated_cards import Bits, Card, State, crc_a, to_bits, to_bytes

# Registers (datasheet section 9.2).
COMMAND, COM_IEN, DIV_IEN, COM_IRQ, DIV_IRQ, ERROR, STATUS1, STATUS2 = range(1, 9)
FIFO_DATA, FIFO_LEVEL, WATER_LEVEL, CONTROL, BIT_FRAMING, COLL = range(9, 15)
MODE, TX_MODE, RX_MODE, TX_CONTROL, TX_ASK = range(0x11, 0x16)
CRC_RESULT_H, CRC_RESULT_L = 0x21, 0x22
T_MODE, T_PRESCALER, T_RELOAD_H, T_RELOAD_L, T_COUNTER_H, T_COUNTER_L = range(0x2A, 0x30)
VERSION = 0x37

RESET_VALUES = {
    COMMAND: 0x20, COM_IEN: 0x80, COM_IRQ: 0x14, STATUS1: 0x21, WATER_LEVEL: 0x08,
    CONTROL: 0x10, COLL: 0x80, MODE: 0x3F, TX_CONTROL: 0x80, 0x16: 0x10, 0x17: 0x84,
    0x18: 0x84, 0x19: 0x4D, 0x1C: 0x62, 0x1F: 0xEB, CRC_RESULT_H: 0xFF, CRC_RESULT_L: 0xFF,
    0x24: 0x26, 0x26: 0x48, 0x27: 0x88, 0x28: 0x20, 0x29: 0x20, VERSION: 0x92,
}  # fmt: skip

# Commands (section 10.3).
IDLE, MEM, RANDOM_ID, CALC_CRC, TRANSMIT, NO_CHANGE, RECEIVE = 0, 1, 2, 3, 4, 7, 8
TRANSCEIVE, MF_AUTHENT, SOFT_RESET = 0x0C, 0x0E, 0x0F

# ComIrqReg bits.
TX_IRQ, RX_IRQ, IDLE_IRQ, ERR_IRQ, TIMER_IRQ = 0x40, 0x20, 0x10, 0x02, 0x01
CRC_IRQ = 0x04  # DivIrqReg
COLL_ERR, BUFFER_OVFL = 0x08, 0x10  # ErrorReg
MF_CRYPTO1_ON = 0x08  # Status2Reg

BIT_SECONDS = 1 / 105_937.5  # 106 kbit/s: 128 carrier cycles a bit
FRAME_DELAY = 1236 / 13.56e6  # PCD to PICC frame delay after a frame ending in 1 (ISO 14443-3)
AUTH_SECONDS = 0.0008  # three passes of MIFARE Classic authentication


def _air_seconds(bits: int) -> float:
    # Start of frame, a parity bit a byte, end of frame.
    return (bits + bits // 8 + 2) * BIT_SECONDS


@dataclass(order=True)
class _Event:
    at: float
    seq: int
    act: Callable[[], None] = field(compare=False)


class Rc522Chip:
    """One MFRC522 with a field of cards; ``transfer`` is what one SPI transfer does."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        reset_line: Callable[[], bool] | None = None,
    ) -> None:
        self._clock = clock
        self.bus_seconds = 0.0  # time spent clocking SPI bytes
        self.reset_line = reset_line or (lambda: True)
        self.field: list[Card] = []
        self.transfers = 0  # SPI transfers (one ioctl each on a Pi)
        self.resets = 0  # power-ups from the reset pin
        self.frames: list[list[int]] = []  # every frame the antenna sent, as bytes
        self._powered = False
        self._regs = [0] * 64
        self._fifo: list[int] = []
        self._events: list[_Event] = []
        self._seq = 0
        self._crc: list[int] | None = None  # data of a running CalcCRC
        self._timer_end: float | None = None
        self._reset_registers()

    # The field

    def put(self, card: Card) -> Card:
        """Bring ``card`` into the field."""
        card.power_on()
        self.field.append(card)
        return card

    def take(self, card: Card) -> None:
        """Pull ``card`` out of the field."""
        self.field.remove(card)

    # SPI

    def clock(self) -> float:
        """The chip's time: the given clock, plus what the SPI bus spent."""
        return self._clock() + self.bus_seconds

    def transfer(self, data: list[int], *, speed_hz: int = 1_000_000) -> list[int]:
        """One SPI transfer (address byte first, section 8.1.2): writes, or reads a register
        for every address byte."""
        self.transfers += 1
        self.bus_seconds += 8 * len(data) / speed_hz
        self._check_power()
        if not self._powered:
            return [0] * len(data)  # powered down: MISO is not driven
        self._advance()
        if not data:
            return []
        address = (data[0] >> 1) & 0x3F
        if data[0] & 0x80 == 0:
            for value in data[1:]:
                self._write(address, value & 0xFF)
            return [0] * len(data)
        out = [0]
        for byte in data[1:]:
            out.append(self._read(address))
            address = (byte >> 1) & 0x3F
        return out

    # Registers

    def _read(self, reg: int) -> int:
        if reg == FIFO_DATA:
            return self._fifo.pop(0) if self._fifo else 0
        if reg == FIFO_LEVEL:
            return len(self._fifo)
        if reg in (T_COUNTER_H, T_COUNTER_L):
            left = self._timer_left()
            return left >> 8 if reg == T_COUNTER_H else left & 0xFF
        if reg in (COM_IRQ, DIV_IRQ):
            return self._regs[reg] & 0x7F
        return self._regs[reg]

    def _write(self, reg: int, value: int) -> None:
        regs = self._regs
        if reg in (COM_IRQ, DIV_IRQ):  # Set1/Set2: set the marked bits, or clear them
            marked = value & 0x7F
            regs[reg] = regs[reg] | marked if value & 0x80 else regs[reg] & ~marked
        elif reg == FIFO_DATA:
            if self._crc is not None:
                self._crc.append(value)
                self._crc_done()
            elif len(self._fifo) < 64:
                self._fifo.append(value)
            else:
                regs[ERROR] |= BUFFER_OVFL
        elif reg == FIFO_LEVEL:
            if value & 0x80:
                self._fifo.clear()
                regs[ERROR] &= ~BUFFER_OVFL
        elif reg == COMMAND:
            regs[COMMAND] = (regs[COMMAND] & 0xF0) | (value & 0x30)
            self._command(value & 0x0F)
        elif reg == STATUS2:
            # Only MFCrypto1On can be written, and only to clear it.
            regs[STATUS2] &= ~MF_CRYPTO1_ON | (value & MF_CRYPTO1_ON)
        elif reg == CONTROL:
            if value & 0x40:  # TStartNow
                self._start_timer(self.clock())
            if value & 0x80:  # TStopNow
                self._timer_end = None
        elif reg == BIT_FRAMING:
            regs[BIT_FRAMING] = value
            if value & 0x80 and regs[COMMAND] & 0x0F == TRANSCEIVE:
                self._send()
        elif reg not in (ERROR, STATUS1, VERSION, CRC_RESULT_H, CRC_RESULT_L):
            regs[reg] = value

    # Commands

    def _command(self, command: int) -> None:
        regs = self._regs
        self._crc = None
        if command == SOFT_RESET:
            self._reset_registers()
            return
        regs[COMMAND] = (regs[COMMAND] & 0xF0) | command
        self._events = [event for event in self._events if event.act != self._idle_after]
        if command == CALC_CRC:
            self._crc = self._fifo[:]
            self._fifo.clear()
            self._crc_done()
        elif command == MF_AUTHENT:
            self._authenticate()

    def _crc_done(self) -> None:
        assert self._crc is not None
        preset = (0x0000, 0x6363, 0xA671, 0xFFFF)[self._regs[MODE] & 0x03]
        if preset != 0x6363:
            raise NotImplementedError("only the CRC_A preset (ModeReg 0x..1) is emulated")
        low, high = crc_a(self._crc)
        self._regs[CRC_RESULT_L], self._regs[CRC_RESULT_H] = low, high
        self._regs[DIV_IRQ] |= CRC_IRQ

    def _antenna_on(self) -> bool:
        return self._regs[TX_CONTROL] & 0x03 != 0

    def _send(self) -> None:
        """Transceive with StartSend: the FIFO goes out; the cards' answer comes back."""
        regs = self._regs
        now = self.clock()
        data, self._fifo = self._fifo, []
        tx_last = regs[BIT_FRAMING] & 0x07
        frame = to_bits(data, tx_last)
        self.frames.append(data)
        regs[ERROR] &= BUFFER_OVFL
        regs[CONTROL] &= ~0x07
        sent = now + _air_seconds(len(frame))
        self._at(sent, lambda: self._set_irq(TX_IRQ))
        answers = [answer for answer in self._answers(frame) if answer is not None]
        if not answers:
            if regs[T_MODE] & 0x80:
                self._at(sent, lambda: self._start_timer(sent))
            return
        length = max(len(answer) for answer in answers)
        done = sent + FRAME_DELAY + _air_seconds(length)
        self._at(done, lambda: self._received(answers))

    def _answers(self, frame: Bits) -> Iterable[Bits | None]:
        if not self._antenna_on():
            return []
        answers = [card.answer(frame) for card in list(self.field)]
        for card in list(self.field):
            if card.leaves_after is not None and card.answered >= card.leaves_after:
                self.field.remove(card)
        return answers

    def _received(self, answers: list[Bits]) -> None:
        regs = self._regs
        self._timer_end = None  # a reception stops the timer
        length = max(len(answer) for answer in answers)
        bits: Bits = []
        collision = None
        for i in range(length):
            values = {answer[i] for answer in answers if i < len(answer)}
            if len(values) > 1 and collision is None:
                collision = i
            bits.append(1 if 1 in values else 0)
        align = (regs[BIT_FRAMING] >> 4) & 0x07
        if collision is not None:
            regs[ERROR] |= COLL_ERR
            if regs[COLL] & 0x80:  # ValuesAfterColl: bits after a collision are cleared
                bits[collision + 1 :] = [0] * (len(bits) - collision - 1)
            # CollPos: 1-32 (32 as 0) counted from the first FIFO byte's bit 0, RxAlign included.
            regs[COLL] = (regs[COLL] & 0x80) | ((align + collision + 1) & 0x1F)
        else:
            regs[COLL] = (regs[COLL] & 0x80) | 0x20  # CollPosNotValid
        received = to_bytes([0] * align + bits)
        self._fifo.extend(received[: 64 - len(self._fifo)])
        regs[CONTROL] = (regs[CONTROL] & ~0x07) | ((align + len(bits)) % 8)
        self._set_irq(RX_IRQ | (ERR_IRQ if regs[ERROR] & 0x1B else 0))

    def _authenticate(self) -> None:
        regs = self._regs
        data, self._fifo = self._fifo, []
        now = self.clock()
        self.frames.append(data)
        selected = [card for card in self.field if card.state is State.ACTIVE]
        ok = (
            len(data) == 12
            and data[0] in (0x60, 0x61)
            and self._antenna_on()
            and len(selected) == 1
            and selected[0].authenticate(data[1], data[2:8], data[8:12])
        )
        if ok:
            regs[STATUS2] |= MF_CRYPTO1_ON
            self._at(now + AUTH_SECONDS, self._idle_after)
        elif regs[T_MODE] & 0x80:
            # The card does not answer and the command never ends (section 10.3.1.9).
            start = now + _air_seconds(16)
            self._at(start, lambda: self._start_timer(start))

    def _idle_after(self) -> None:
        self._regs[COMMAND] &= 0xF0
        self._set_irq(IDLE_IRQ)

    def _set_irq(self, bits: int) -> None:
        self._regs[COM_IRQ] |= bits

    # The timer (section 8.5)

    def _period(self) -> float:
        regs = self._regs
        prescaler = ((regs[T_MODE] & 0x0F) << 8) | regs[T_PRESCALER]
        reload = (regs[T_RELOAD_H] << 8) | regs[T_RELOAD_L]
        return (prescaler * 2 + 1) * (reload + 1) / 13.56e6

    def _start_timer(self, start: float) -> None:
        end = start + self._period()
        self._timer_end = end
        self._at(end, lambda: self._timer_fired(end))

    def _timer_fired(self, end: float) -> None:
        if self._timer_end == end:
            self._timer_end = None
            self._set_irq(TIMER_IRQ)

    def _timer_left(self) -> int:
        if self._timer_end is None:
            return 0
        reload = (self._regs[T_RELOAD_H] << 8) | self._regs[T_RELOAD_L]
        left = (self._timer_end - self.clock()) / max(self._period(), 1e-9)
        return max(0, min(reload, round(left * (reload + 1))))

    # Time and power

    def _at(self, when: float, act: Callable[[], None]) -> None:
        self._seq += 1
        self._events.append(_Event(when, self._seq, act))
        self._events.sort()

    def _advance(self) -> None:
        now = self.clock()
        while self._events and self._events[0].at <= now:
            self._events.pop(0).act()

    def _check_power(self) -> None:
        up = bool(self.reset_line())
        if up and not self._powered:
            self._power_up()
        self._powered = up

    def _power_up(self) -> None:
        self.resets += 1
        self._reset_registers()
        for card in self.field:
            card.power_on()  # the antenna was off: every card lost power

    def _reset_registers(self) -> None:
        self._regs = [RESET_VALUES.get(reg, 0) for reg in range(64)]
        self._fifo.clear()
        self._events.clear()
        self._crc = None
        self._timer_end = None


class SpiBus:
    """The Pi's ``/dev/spidevB.D`` devices: an emulated chip on each one that is wired."""

    def __init__(self) -> None:
        self.chips: dict[tuple[int, int], Rc522Chip] = {}
        self.opened: list[tuple[int, int]] = []
        self.refusals: dict[tuple[int, int], int] = {}  # errno an open fails with

    def wire(self, chip: Rc522Chip, bus: int = 0, device: int = 0) -> Rc522Chip:
        self.chips[(bus, device)] = chip
        return chip

    def refuse(self, code: int, bus: int = 0, device: int = 0) -> None:
        """Make opening ``/dev/spidevB.D`` fail with ``code`` (EACCES: not in the spi group)."""
        self.refusals[(bus, device)] = code

    def module(self) -> types.ModuleType:
        """A stand-in ``spidev`` module whose ``SpiDev`` talks to the wired chips."""
        bus = self
        module = types.ModuleType("spidev")

        class SpiDev:
            """What ``spidev.SpiDev`` offers a driver: open, xfer2/xfer, settings, close."""

            def __init__(self) -> None:
                self.max_speed_hz = 500_000  # spidev's default
                self.mode = 0
                self.bits_per_word = 8
                self._chip: Rc522Chip | None = None

            def open(self, number: int, device: int) -> None:
                refusal = bus.refusals.get((number, device))
                if refusal is not None:
                    raise OSError(refusal, os.strerror(refusal))  # as spidev: from errno
                chip = bus.chips.get((number, device))
                if chip is None:
                    # As spidev does when /dev/spidevB.D is not there (SPI off, or no CE1).
                    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
                bus.opened.append((number, device))
                self._chip = chip

            def xfer2(self, data: list[int]) -> list[int]:
                if self._chip is None:
                    raise OSError(errno.EBADF, os.strerror(errno.EBADF))
                return self._chip.transfer(list(data), speed_hz=self.max_speed_hz)

            xfer = xfer2

            def close(self) -> None:
                self._chip = None

        module.SpiDev = SpiDev  # type: ignore[attr-defined]
        return module


class Gpio:
    """A stand-in ``RPi.GPIO``: the calls the ``mfrc522`` package makes, pin levels kept."""

    BCM, BOARD = 11, 10
    OUT, IN = 0, 1
    HIGH, LOW = 1, 0

    def __init__(self) -> None:
        self.mode: int | None = None
        self.levels: dict[int, int] = {}
        self.cleaned_up = False

    def level(self, pin: int) -> bool:
        # An input or a pin never set up floats; the RC522 board pulls NRSTPD up.
        return bool(self.levels.get(pin, 1))

    def module(self) -> types.ModuleType:
        gpio = self
        module = types.ModuleType("RPi.GPIO")
        for name in ("BCM", "BOARD", "OUT", "IN", "HIGH", "LOW"):
            setattr(module, name, getattr(self, name))

        def setmode(mode: int) -> None:
            gpio.mode = mode

        def setup(pin: int, direction: int, initial: int = 0) -> None:
            if gpio.mode is None:
                raise RuntimeError("Please set pin numbering mode using GPIO.setmode")
            if direction == gpio.OUT:
                gpio.levels[pin] = initial
            else:
                gpio.levels.pop(pin, None)

        def output(pin: int, value: int) -> None:
            if pin not in gpio.levels:
                raise RuntimeError("The GPIO channel has not been set up as an OUTPUT")
            gpio.levels[pin] = int(bool(value))

        def cleanup() -> None:
            gpio.levels.clear()
            gpio.cleaned_up = True

        module.getmode = lambda: gpio.mode  # type: ignore[attr-defined]
        module.setmode = setmode  # type: ignore[attr-defined]
        module.setwarnings = lambda flag: None  # type: ignore[attr-defined]
        module.setup = setup  # type: ignore[attr-defined]
        module.output = output  # type: ignore[attr-defined]
        module.cleanup = cleanup  # type: ignore[attr-defined]
        return module
