"""Badge readers: each yields the UIDs of cards presented to it, as uppercase hex.

Serial readers and the MFRC522 block, so each runs on its own thread and hands UIDs to asyncio
with ``loop.call_soon_threadsafe``: this module is the one place that happens for readers. A card
held on a reader is one tap (``HoldOff``); every bad frame or line is logged and counted in
``bad_reads``.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import errno
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Protocol, Self, assert_never

from edge_agent.config import (
    KeyboardReaderConfig,
    Mfrc522ReaderConfig,
    Rdm6300ReaderConfig,
    ReaderConfig,
    SerialLineReaderConfig,
    SimulatedReaderConfig,
)
from edge_agent.errors import ReaderError as ReaderError
from edge_agent.hardware import PinFactory
from edge_agent.rc522 import BadReadError, Rc522
from edge_agent.rdm6300 import Rdm6300Decoder, shown
from varco.protocol import PASS_QR_PREFIX

log = logging.getLogger(__name__)

Clock = Callable[[], float]

_MAX_LINE = 128  # bytes; no reader types a UID this long, so a longer line is noise
_PORT_TIMEOUT = 0.5  # seconds; ``close`` interrupts a read sooner through ``cancel_read``


class Reader(Protocol):
    """A source of badge taps."""

    @property
    def bad_reads(self) -> int:
        """Count the frames, lines or reads rejected so far."""
        ...

    async def read(self) -> str:
        """Wait for the next card and return its UID."""
        ...

    def close(self) -> None:
        """Stop reading and release the device."""
        ...


class HoldOff:
    """Make a card held on a reader one tap: its UID counts again only after it was away a while.

    Only the last card is remembered, so a different card is a tap at once.
    """

    def __init__(self, seconds: float, clock: Clock = time.monotonic) -> None:
        self._seconds = seconds
        self._clock = clock
        self._last_uid: str | None = None
        self._last_seen = 0.0

    def admit(self, uid: str) -> bool:
        """Note that ``uid`` was seen now; return whether this sighting is a new tap."""
        now = self._clock()
        # Each sighting restarts the time: a held card is seen again and again, never absent.
        held = uid == self._last_uid and now - self._last_seen < self._seconds
        self._last_uid, self._last_seen = uid, now
        return not held


_DECIMAL_UID = re.compile(r"[0-9]{10}")
_HEX_UID = re.compile(r"[0-9A-Fa-f]{4,32}")


_PASS_CODE = re.compile(r"[0-9A-Za-z_-]{4,64}")


def uid_from_line(line: str) -> str:
    """Return the UID a USB reader typed on one line; raise ``ValueError`` saying why not.

    Exactly 10 decimal digits, at most 4294967295, is the 32-bit card number that keyboard-style
    EM4100 and MIFARE readers type; it becomes 8 hex digits. Anything else must be hex: 4 to 32
    digits, an even count (whole bytes), any case, optionally separated by ':' or ' '. So a
    10-digit number above 32 bits reads as hex (a 40-bit EM4100 ID).
    """
    text = line.strip()
    if text[: len(PASS_QR_PREFIX)].lower() == PASS_QR_PREFIX:
        # A guest pass's QR code, scanned: handed on as it is (see varco.protocol).
        code = text[len(PASS_QR_PREFIX) :]
        if not _PASS_CODE.fullmatch(code):
            raise ValueError("a pass QR code with a malformed code")
        return PASS_QR_PREFIX + code
    if _DECIMAL_UID.fullmatch(text) and int(text) <= 0xFFFF_FFFF:
        return f"{int(text):08X}"
    digits = text.replace(":", "").replace(" ", "")
    if not _HEX_UID.fullmatch(digits):
        raise ValueError("neither 10 decimal digits nor 4-32 hex digits")
    if len(digits) % 2:
        raise ValueError("an odd number of hex digits")
    return digits.upper()


class LineDecoder:
    """Cut a USB reader's output into lines (CR, LF or both) and each line into a UID."""

    def __init__(self, name: str = "serial_line") -> None:
        self.bad_reads = 0
        self._name = name
        self._line = bytearray()
        self._overlong = False  # dropping the rest of a line already counted as bad

    def feed(self, data: bytes) -> list[str]:
        """Take bytes read from the port; return the UIDs of the lines they complete."""
        uids: list[str] = []
        *complete, rest = re.split(rb"[\r\n]", data)
        for part in complete:
            self._take(part)
            uid = self._end_line()
            if uid is not None:
                uids.append(uid)
        self._take(rest)
        return uids

    def _take(self, part: bytes) -> None:
        if self._overlong:
            return
        self._line += part
        if len(self._line) > _MAX_LINE:
            self._bad(f"line longer than {_MAX_LINE} bytes", self._line)
            self._line.clear()
            self._overlong = True

    def _end_line(self) -> str | None:
        line = bytes(self._line)
        self._line.clear()
        if self._overlong:
            self._overlong = False
            return None
        if not line.strip():
            return None  # the empty line between CR and LF
        try:
            return uid_from_line(line.decode("ascii"))
        except UnicodeDecodeError:
            self._bad("not ASCII", line)
        except ValueError as exc:
            self._bad(str(exc), line)
        return None

    def _bad(self, reason: str, data: bytes | bytearray) -> None:
        self.bad_reads += 1
        log.warning("%s: bad line (%s): %s", self._name, reason, shown(data))


class SimulatedReader:
    """A reader you can ``present(uid)`` a card to: for the demo and for tests."""

    bad_reads = 0

    def __init__(self, *, hold_off_seconds: float = 0.0, clock: Clock = time.monotonic) -> None:
        self._hold_off = HoldOff(hold_off_seconds, clock)
        self._cards: asyncio.Queue[str] = asyncio.Queue()

    def present(self, uid: str) -> bool:
        """Hold a card with ``uid`` against the reader; return whether that was a tap."""
        if uid[: len(PASS_QR_PREFIX)].lower() != PASS_QR_PREFIX:
            uid = uid.upper()  # a pass's code is kept as it was scanned
        if not self._hold_off.admit(uid):
            return False
        self._cards.put_nowait(uid)
        return True

    async def read(self) -> str:
        """Wait for the next card and return its UID."""
        return await self._cards.get()

    def close(self) -> None:
        """Release nothing: a simulated reader holds no device."""


class ThreadedReader(abc.ABC):
    """A reader whose device blocks: a thread sights cards, the running event loop gets the taps."""

    def __init__(self, name: str, hold_off_seconds: float, clock: Clock) -> None:
        self._name = name
        self._loop = asyncio.get_running_loop()
        self._hold_off = HoldOff(hold_off_seconds, clock)
        self._taps: asyncio.Queue[str | ReaderError] = asyncio.Queue()
        self._failure: ReaderError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"reader {name}", daemon=True)

    @abc.abstractmethod
    def _poll(self) -> Sequence[str]:
        """Block until the device says something; return the UIDs it saw."""

    @abc.abstractmethod
    def _release(self) -> None:
        """Close the device, once the thread has stopped."""

    def _interrupt(self) -> None:  # noqa: B027 - only readers that block in the device need it
        """Make a blocked ``_poll`` return now."""

    async def read(self) -> str:
        """Wait for the next card and return its UID; raise ``ReaderError`` if the device failed."""
        if self._failure is not None:
            raise self._failure
        tap = await self._taps.get()
        if isinstance(tap, ReaderError):
            self._failure = tap
            raise tap
        return tap

    def close(self) -> None:
        """Stop the thread and release the device."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._interrupt()
        if self._thread.is_alive():
            self._thread.join(timeout=2 * _PORT_TIMEOUT)
        self._release()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for uid in self._poll():
                    if self._hold_off.admit(uid):
                        self._hand_over(uid)
        except Exception as exc:  # any failure must reach read(), not end the thread silently
            if not self._stop.is_set():
                log.error("%s: stopped reading: %s", self._name, exc)
                failure = ReaderError(f"{self._name}: stopped reading: {exc}")
                failure.__cause__ = exc
                self._hand_over(failure)

    def _hand_over(self, tap: str | ReaderError) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the agent is gone
            self._loop.call_soon_threadsafe(self._taps.put_nowait, tap)


class _SerialReader(ThreadedReader):
    """A reader on a serial port, read on a thread with pyserial's blocking reads."""

    _kind: str

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 9600,
        hold_off_seconds: float = 2.0,
        clock: Clock = time.monotonic,
    ) -> None:
        name = f"{self._kind} {port}"
        super().__init__(name, hold_off_seconds, clock)
        self._decoder = self._decoder_for(name)
        # Imported here: desk nodes and RC522 doors never load pyserial (bench/README.md).
        import serial  # noqa: PLC0415

        try:
            self._port = serial.Serial(port, baudrate, timeout=_PORT_TIMEOUT, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise ReaderError(f"{name}: cannot open the port: {_reason(exc)}") from exc
        self._thread.start()

    @staticmethod
    @abc.abstractmethod
    def _decoder_for(name: str) -> Rdm6300Decoder | LineDecoder:
        """Make the decoder for this reader's bytes."""

    @property
    def bad_reads(self) -> int:
        """Count the frames or lines rejected so far."""
        return self._decoder.bad_reads

    def _poll(self) -> Sequence[str]:
        return self._decoder.feed(self._port.read(self._port.in_waiting or 1))

    def _interrupt(self) -> None:
        self._port.cancel_read()

    def _release(self) -> None:
        self._port.close()


def _reason(exc: Exception) -> str:
    # pyserial's message repeats the port and the errno; say the reason once, with the fix.
    code = getattr(exc, "errno", None)
    if code == errno.EACCES:
        return "permission denied (add the user to the 'dialout' group)"
    if code in (errno.EAGAIN, errno.EWOULDBLOCK):
        return "in use by another program"
    return os.strerror(code) if isinstance(code, int) else str(exc)


class Rdm6300Reader(_SerialReader):
    """A 125 kHz RDM6300 module on a serial port."""

    _kind = "rdm6300"
    _decoder_for = staticmethod(Rdm6300Decoder)


class SerialLineReader(_SerialReader):
    """A USB reader that types one UID per line on a serial port (see ``uid_from_line``)."""

    _kind = "serial_line"
    _decoder_for = staticmethod(LineDecoder)


class Mfrc522Reader(ThreadedReader):
    """An RC522 (13.56 MHz, MIFARE) on SPI, polled for a card every ``poll_seconds``."""

    def __init__(
        self,
        chip: Rc522,
        *,
        poll_seconds: float = 0.1,
        hold_off_seconds: float = 2.0,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(chip.where, hold_off_seconds, clock)
        self.bad_reads = 0
        self._chip = chip
        self._poll_seconds = poll_seconds
        self._thread.start()

    @classmethod
    def open(cls, config: Mfrc522ReaderConfig, *, pin_factory: PinFactory = None) -> Mfrc522Reader:
        """Open the RC522 ``config`` describes; raise ``ReaderError`` saying what is wrong."""
        chip = Rc522.open(
            bus=config.spi_bus,
            device=config.spi_device,
            reset_pin=config.reset_pin,
            pin_factory=pin_factory,
        )
        return cls(chip, poll_seconds=config.poll_seconds, hold_off_seconds=config.hold_off_seconds)

    def _poll(self) -> Sequence[str]:
        try:
            uid = self._chip.read_uid()
        except BadReadError as exc:
            self.bad_reads += 1
            log.warning("%s: bad read (%s)", self._name, exc)
            uid = None
        self._stop.wait(self._poll_seconds)
        return [] if uid is None else [uid]

    def _release(self) -> None:
        self._chip.close()


def open_reader(config: ReaderConfig, *, pin_factory: PinFactory = None) -> Reader:
    """Open the reader ``config`` describes; raise ``ReaderError`` if its device cannot be used.

    Call it inside the running event loop: a reader's thread hands its taps to that loop.
    ``pin_factory`` drives an RC522's reset pin, like every other pin of the device.
    """
    match config:
        case SimulatedReaderConfig():
            return SimulatedReader(hold_off_seconds=config.hold_off_seconds)
        case Rdm6300ReaderConfig():
            return Rdm6300Reader(
                config.port, baudrate=config.baudrate, hold_off_seconds=config.hold_off_seconds
            )
        case SerialLineReaderConfig():
            return SerialLineReader(
                config.port, baudrate=config.baudrate, hold_off_seconds=config.hold_off_seconds
            )
        case Mfrc522ReaderConfig():
            return Mfrc522Reader.open(config, pin_factory=pin_factory)
        case KeyboardReaderConfig():
            # Imported here: it builds on this module, and only its doors need it.
            from edge_agent.keyboard import KeyboardReader  # noqa: PLC0415

            return KeyboardReader.open(config)
        case _:
            assert_never(config)
