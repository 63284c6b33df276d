"""USB readers that type the card number as a keyboard, read through Linux evdev.

The cheapest and commonest readers: plugged in, they are a keyboard that types the UID and
Enter. On a Pi that keyboard would type into the login console, so the agent opens its event
device through ``evdev`` (imported only for a door with ``reader: {kind: keyboard}``) and grabs
it: its keystrokes then reach the agent alone. The events are read as the kernel writes them
(``struct input_event``) and typed keys become a line, then a UID, as a serial reader's
(``readers.LineDecoder``).
"""

from __future__ import annotations

import errno
import importlib
import os
import select
import struct
import time
from collections.abc import Callable, Sequence

from edge_agent.config import KeyboardReaderConfig
from edge_agent.errors import ReaderError
from edge_agent.readers import Clock, LineDecoder, ThreadedReader

# struct input_event: a timeval (two longs: 16 bytes on 64-bit, 8 on 32-bit) and type, code,
# value (linux/input.h).
EVENT = struct.Struct("llHHi")
EV_KEY = 0x01
_PRESSED = 1  # 0 is a release, 2 an autorepeat
_WAIT_SECONDS = 0.5  # ``close`` is seen within this

# Key codes from linux/input-event-codes.h: a stable kernel ABI, so evdev is needed only to
# open and grab the device.
_KEYS = {
    **{code: str(digit) for digit, code in zip(range(1, 10), range(2, 11), strict=True)},
    11: "0",
    **{code: digit for digit, code in zip("789456123", (71, 72, 73, 75, 76, 77, 79, 80, 81),
                                         strict=True)},
    82: "0",
    30: "a", 48: "b", 46: "c", 32: "d", 18: "e", 33: "f",
    39: ";", 57: " ",  # a ':' is a shifted ';' on a US layout; some readers space their bytes
}  # fmt: skip
_ENTER = (28, 96)  # KEY_ENTER, KEY_KPENTER
_OTHER = "?"  # a key no UID has: the line is refused, and counted


def keys_to_text(events: Sequence[tuple[int, int, int]]) -> bytes:
    """Turn (type, code, value) events into the bytes a serial reader would have sent."""
    text = []
    for kind, code, value in events:
        if kind != EV_KEY or value != _PRESSED or code in (42, 54):  # shifts: case is moot
            continue
        text.append("\n" if code in _ENTER else _KEYS.get(code, _OTHER))
    return "".join(text).replace(";", ":").encode("ascii")


class KeyboardReader(ThreadedReader):
    """A keyboard-style reader on an event device's file descriptor."""

    def __init__(
        self,
        fd: int,
        *,
        name: str,
        hold_off_seconds: float = 2.0,
        clock: Clock = time.monotonic,
        release: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(name, hold_off_seconds, clock)
        self._fd = fd
        self._release_device = release or (lambda: os.close(fd))
        self._decoder = LineDecoder(name)
        self._partial = b""
        self._thread.start()

    @classmethod
    def open(cls, config: KeyboardReaderConfig) -> KeyboardReader:
        """Open and grab the event device; raise ``ReaderError`` saying what is wrong."""
        name = f"keyboard {config.device}"
        try:
            evdev = importlib.import_module("evdev")
        except ImportError as exc:
            raise ReaderError(
                f"{name}: the evdev package is missing; on the Pi run: pip install 'varco[pi]'"
            ) from exc
        try:
            device = evdev.InputDevice(config.device)
        except OSError as exc:
            raise ReaderError(f"{name}: cannot open: {_reason(exc)}") from exc
        try:
            device.grab()
        except OSError as exc:
            device.close()
            raise ReaderError(f"{name}: cannot take it for the agent: {_reason(exc)}") from exc
        return cls(
            device.fd,
            name=name,
            hold_off_seconds=config.hold_off_seconds,
            release=device.close,  # closing ungrabs
        )

    @property
    def bad_reads(self) -> int:
        """Count the lines rejected so far."""
        return self._decoder.bad_reads

    def _poll(self) -> Sequence[str]:
        ready, _, _ = select.select([self._fd], [], [], _WAIT_SECONDS)
        if not ready:
            return []
        data = os.read(self._fd, EVENT.size * 64)
        if not data:
            raise OSError(errno.ENODEV, "the reader was unplugged")
        data = self._partial + data
        whole = len(data) - len(data) % EVENT.size
        self._partial = data[whole:]
        events = [event[2:] for event in EVENT.iter_unpack(data[:whole])]
        return self._decoder.feed(keys_to_text(events))

    def _release(self) -> None:
        self._release_device()


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "no such device (is the reader plugged in? see ls /dev/input/by-id/)"
    if exc.errno == errno.EACCES:
        return "permission denied (add the user to the 'input' group)"
    if exc.errno == errno.ENOTTY:
        return "not an input event device (/dev/input/event* or /dev/input/by-id/*-event-kbd)"
    if exc.errno == errno.EBUSY:
        return "another program has taken it"
    return os.strerror(exc.errno) if exc.errno else str(exc)
