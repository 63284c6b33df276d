"""Whether the readers at the doors could ever send a badge's UID as it was registered.

Readers report UIDs as uppercase hex, each in its own way (edge_agent/readers.py):

- ``mfrc522`` (13.56 MHz MIFARE): the 4-byte or 7-byte UID, 8 or 14 hex digits;
- ``rdm6300`` (125 kHz EM4100): a version byte and the 32-bit tag, 10 hex digits;
- ``serial_line`` and ``keyboard`` (USB readers that type, on a serial port or as a keyboard):
  hex as typed, but exactly 10 decimal digits up to 4294967295 are the 32-bit card number
  printed on many cards, which they send as 8 hex digits.

So ``0499999999``, typed from the card's print, is a hex UID no keyboard reader ever sends: it
sends ``1DCD64FF``. Such a badge would never open a door, and the admin would not know. These
checks are warnings, not refusals: the gateway does not know every door's reader, and a reader
kind not listed here may send what these cannot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

ReaderKind = Literal["mfrc522", "rdm6300", "serial_line", "keyboard", "simulated"]
_DECIMAL_MAX = 0xFFFF_FFFF


def typed_card_number(uid: str) -> str | None:
    """Return the hex a keyboard reader sends for ``uid`` read as a decimal card number."""
    if len(uid) == 10 and uid.isdigit() and int(uid) <= _DECIMAL_MAX:
        return f"{int(uid):08X}"
    return None


def unreadable_by(kind: str, uid: str) -> str | None:
    """Say why a reader of ``kind`` never sends ``uid`` (uppercase hex); None if it may."""
    if kind == "mfrc522" and len(uid) not in (8, 14):
        return f"an mfrc522 reader sends 8 or 14 hex digits, not {len(uid)}"
    if kind == "rdm6300" and len(uid) != 10:
        return f"an rdm6300 reader sends 10 hex digits, not {len(uid)}"
    if kind in ("serial_line", "keyboard"):
        number = typed_card_number(uid)
        if number is not None:
            return (
                f"a {kind} reader types {uid} as a decimal card number and sends it as "
                f"{number}: if {uid} is the number printed on the card, register {number}"
            )
    return None


def warnings_for(uid: str, door_readers: Mapping[str, str | None]) -> list[str]:
    """Warn about each door whose reader never sends ``uid``; ``door_readers``: door -> kind.

    A door whose reader is not known is warned about for the one mistake that is likely
    whatever it is: a decimal card number registered as hex.
    """
    by_problem: dict[str, list[str]] = {}
    for door, kind in sorted(door_readers.items()):
        problem = unreadable_by(kind or "serial_line", uid)
        if problem is not None and kind is None:
            problem = f"if its reader types card numbers, {problem}"
        if problem is not None:
            by_problem.setdefault(problem, []).append(door)
    return [
        f"door{'s' if len(doors) > 1 else ''} {', '.join(doors)} will never read {uid}: {problem}"
        for problem, doors in by_problem.items()
    ]
