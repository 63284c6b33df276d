"""The RDM6300's serial protocol: a pure decoder from bytes to tag UIDs."""

from __future__ import annotations

import functools
import logging
import operator

log = logging.getLogger(__name__)

STX, ETX = 0x02, 0x03
_DIGITS = 12  # between STX and ETX: 10 of data, 2 of checksum
_HEX_DIGITS = frozenset(b"0123456789ABCDEFabcdef")


def shown(data: bytes | bytearray) -> str:
    """Return ``data`` fit for a log line: its repr, cut after 32 bytes."""
    return repr(bytes(data[:32])) + ("..." if len(data) > 32 else "")


class Rdm6300Decoder:
    """Cut an RDM6300's byte stream into UIDs; log and count every bad frame.

    A frame is STX, 10 hex digits (a version byte and the 32-bit tag), 2 hex digits of checksum
    (the XOR of those five bytes), ETX. Bytes outside a frame are skipped up to the next STX, and
    a run of them counts as one bad read however many reads it arrives in.
    """

    def __init__(self, name: str = "rdm6300") -> None:
        self.bad_reads = 0
        self._name = name
        self._buffer = bytearray()  # at most STX and 12 digits between calls
        self._skipping = False  # in a run of stray bytes that is already counted

    def feed(self, data: bytes) -> list[str]:
        """Take bytes read from the port; return the UIDs of the frames they complete."""
        self._buffer += data
        uids: list[str] = []
        while self._buffer:
            start = self._buffer.find(STX)
            if start != 0:
                stray = len(self._buffer) if start < 0 else start
                if not self._skipping:
                    self._bad("bytes outside a frame", self._buffer[:stray])
                self._skipping = start < 0  # the run may go on in the next read
                del self._buffer[:stray]
                continue
            self._skipping = False
            end = next((i for i, b in enumerate(self._buffer) if i and b in (STX, ETX)), -1)
            if end < 0:
                if len(self._buffer) > 1 + _DIGITS:
                    self._bad("no ETX after 12 digits", self._buffer)
                    self._buffer.clear()
                    self._skipping = True  # the rest of this frame is not a new bad read
                break  # wait for the rest of the frame
            if self._buffer[end] == STX:  # a new frame began before this one ended
                self._bad("frame cut short", self._buffer[:end])
                del self._buffer[:end]
                continue
            frame = bytes(self._buffer[: end + 1])
            del self._buffer[: end + 1]
            uid = self._uid(frame)
            if uid is not None:
                uids.append(uid)
        return uids

    def _uid(self, frame: bytes) -> str | None:
        digits = frame[1:-1]
        if len(digits) != _DIGITS:
            self._bad(f"wrong length: {len(digits)} digits, not 12", frame)
        elif not _HEX_DIGITS.issuperset(digits):
            self._bad("not hex", frame)
        elif _xor(bytes.fromhex(digits[:10].decode())) != int(digits[10:], 16):
            self._bad("bad checksum", frame)
        else:
            return digits[:10].decode().upper()
        return None

    def _bad(self, reason: str, data: bytes | bytearray) -> None:
        self.bad_reads += 1
        log.warning("%s: bad frame (%s): %s", self._name, reason, shown(data))


def _xor(data: bytes) -> int:
    return functools.reduce(operator.xor, data, 0)
