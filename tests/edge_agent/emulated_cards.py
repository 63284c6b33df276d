"""ISO/IEC 14443A cards as an MFRC522 sees them in its field, for the emulated chip.

A card answers bit frames (LSB first, as they go over the air) the way ISO/IEC 14443-3 says:
REQA/WUPA, anticollision and select at cascade levels 1-3, HLTA, and the MIFARE Classic READ
after an authentication. The authentication itself is not over the air here: the chip runs it
(``MFAuthent``), so ``authenticate`` is the chip's side door, as on the real chip where the
Crypto1 exchange never reaches the FIFO. Timing is the chip's business (``emulated_rc522``).

Written from the standard, not from a driver: the real ``mfrc522`` package and Varco's own
driver are both tested against it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

Bits = list[int]

REQA, WUPA = 0x26, 0x52
SEL = (0x93, 0x95, 0x97)  # cascade levels 1, 2, 3
HLTA = 0x50
READ = 0x30
CASCADE_TAG = 0x88
NAK = [0, 0, 1, 0]  # 0x4, four bits: not allowed (no authentication for this block)


def crc_a(data: Sequence[int]) -> list[int]:
    """ISO/IEC 14443-3 CRC_A of ``data``: two bytes, low first."""
    crc = 0x6363
    for byte in data:
        byte ^= crc & 0xFF
        byte = (byte ^ (byte << 4)) & 0xFF
        crc = (crc >> 8) ^ (byte << 8) ^ (byte << 3) ^ (byte >> 4)
    return [crc & 0xFF, crc >> 8]


def to_bits(data: Sequence[int], last_bits: int = 0) -> Bits:
    """Bytes as sent over the air, LSB first; ``last_bits`` of the last byte only (0: all)."""
    bits = [(byte >> i) & 1 for byte in data for i in range(8)]
    if last_bits and data:
        del bits[len(bits) - 8 + last_bits :]
    return bits


def to_bytes(bits: Bits) -> list[int]:
    """Bits (LSB first) as bytes; a partial last byte fills its low bits."""
    out = [0] * ((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        out[i // 8] |= bit << (i % 8)
    return out


class State(enum.Enum):
    IDLE = "idle"
    READY = "ready"
    ACTIVE = "active"
    HALT = "halt"


class Card:
    """A MIFARE card: a UID of 4, 7 or 10 bytes, 64 blocks of 16 bytes, one key A for all."""

    def __init__(
        self,
        uid: bytes | str,
        *,
        sak: int = 0x08,
        key: bytes = b"\xff" * 6,
        blocks: dict[int, bytes] | None = None,
        leaves_after: int | None = None,
    ) -> None:
        self.uid = bytes.fromhex(uid) if isinstance(uid, str) else uid
        if len(self.uid) not in (4, 7, 10):
            raise ValueError("a UID has 4, 7 or 10 bytes")
        self.sak = sak
        self.key = key
        self.blocks = {n: bytes(16) for n in range(64)} | (blocks or {})
        # A card pulled away mid-read: it answers this many frames, then leaves the field.
        self.leaves_after = leaves_after
        self.state = State.IDLE
        self.woken_from_halt = False  # the READY* and ACTIVE* states of the standard
        self.level = 0
        self.sector: int | None = None  # authenticated sector
        self.answered = 0

    @property
    def atqa(self) -> list[int]:
        size = {4: 0x00, 7: 0x40, 10: 0x80}[len(self.uid)]  # UID size bits 7-6
        return [size | 0x04, 0x00]  # bit-frame anticollision

    def cln(self, level: int) -> list[int]:
        """The UID part sent at cascade ``level`` (0-based): 4 bytes and their check byte."""
        levels = (len(self.uid) - 1) // 3  # 4 -> 1 level, 7 -> 2, 10 -> 3
        if level == levels - 1:
            part = list(self.uid[-4:])
        else:
            part = [CASCADE_TAG, *self.uid[3 * level : 3 * level + 3]]
        check = part[0] ^ part[1] ^ part[2] ^ part[3]
        return [*part, check]

    def power_on(self) -> None:
        """Enter the field: the card starts up in IDLE."""
        self.state, self.woken_from_halt, self.level, self.sector = State.IDLE, False, 0, None

    def answer(self, frame: Bits) -> Bits | None:
        """Take one frame from the reader; return the answer's bits, or None for silence."""
        reply = self._answer(frame)
        if reply is not None:
            self.answered += 1
        return reply

    def _answer(self, frame: Bits) -> Bits | None:
        if len(frame) == 7:
            command = to_bytes(frame)[0]
            woken = command == WUPA or (command == REQA and self.state is State.IDLE)
            if self.state in (State.IDLE, State.HALT) and woken:
                self.woken_from_halt = self.state is State.HALT
                self.state, self.level, self.sector = State.READY, 0, None
                return to_bits(self.atqa)
            return self._unexpected()
        if self.state is State.READY and len(frame) >= 16:
            return self._select(frame)
        if self.state is State.ACTIVE and len(frame) % 8 == 0:
            return self._active(to_bytes(frame))
        return self._unexpected()

    def _select(self, frame: Bits) -> Bits | None:
        sel, nvb = to_bytes(frame[:16])
        if sel != SEL[self.level]:
            return self._unexpected()
        cln = to_bits(self.cln(self.level))
        if nvb == 0x70:  # SELECT: the whole UID part, its check byte and CRC_A
            data = to_bytes(frame)
            if len(frame) != 72 or crc_a(data[:7]) != data[7:] or to_bits(data[2:7]) != cln:
                return self._unexpected()
            complete = self.level == (len(self.uid) - 1) // 3 - 1
            if complete:
                self.state = State.ACTIVE
                sak = self.sak
            else:
                self.level += 1
                sak = 0x04  # the UID goes on at the next cascade level
            return to_bits([sak, *crc_a([sak])])
        known = (nvb >> 4) * 8 + (nvb & 0x0F) - 16  # UID bits the reader already sent
        if not 0 <= known < 40 or len(frame) != 16 + known:
            return self._unexpected()
        if frame[16:] != cln[:known]:
            return None  # another card's UID: this one keeps quiet, still READY
        return cln[known:]

    def _active(self, data: list[int]) -> Bits | None:
        if len(data) == 4 and crc_a(data[:2]) == data[2:]:
            if data[:2] == [HLTA, 0x00]:
                self.state = State.HALT
                return None
            if data[0] == READ:
                block = data[1]
                if block < len(self.blocks) and self.sector == block // 4:
                    content = list(self.blocks[block])
                    return to_bits([*content, *crc_a(content)])
                self.state = State.HALT if self.woken_from_halt else State.IDLE
                return NAK
        return self._unexpected()

    def _unexpected(self) -> Bits | None:
        # ISO/IEC 14443-3: anything unexpected sends a card back to IDLE, or to HALT if it
        # was woken from there; it says nothing.
        if self.state in (State.READY, State.ACTIVE):
            self.state = State.HALT if self.woken_from_halt else State.IDLE
        silence: Bits | None = None
        return silence

    def authenticate(self, block: int, key: Sequence[int], serial: Sequence[int]) -> bool:
        """Run MIFARE Classic authentication for ``block`` (the chip's MFAuthent command).

        ``serial`` is the 4 bytes the card's Crypto1 is keyed on: the UID of a 4-byte card,
        its last 4 bytes for a 7-byte one (NXP AN10927).
        """
        ok = (
            self.state is State.ACTIVE
            and block < len(self.blocks)
            and bytes(key) == self.key
            and bytes(serial) == self.uid[-4:]
        )
        if ok:
            self.sector = block // 4
            self.answered += 1
        else:
            self._unexpected()
        return ok
