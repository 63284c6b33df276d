"""Allow-lists: who may open a controller's doors, and when, for deciding without the gateway.

A controller gets its list whole once (``Allowlist``, retained) and then small versioned
updates (``AllowlistDelta``, not retained): a change to one member sends that member's records,
not the space. Each update names the version it applies to (``since``); a door whose list is
not at that version has missed one, says so in its status, and the gateway sends the list whole.

The encoding is compact, because a list of 50,000 credentials must fit the payload limit and a
Pi Zero's memory: credentials are fixed-size binary records (``RECORD``), sorted by digest and
carried as one base64 string, which the door keeps as bytes and searches by bisection. A record
holds the credential's keyed digest (96 bits of keyed BLAKE2b with the device's own key, never
a UID), the access profile it uses (what its plan opens at this controller's doors, and when)
and its validity in microseconds since the epoch, so that a door decides exactly as the
gateway's ``decide()`` does.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from varco.protocol.payloads import (
    AwareDatetime,
    Count,
    Credential,
    CredentialKind,
    Id,
    UnlockSeconds,
    _as_float,
    _Payload,
    pass_code_hash,
)
from varco.protocol.schedule import Interval, Window

MAX_ALLOWLIST_BYTES = 4 * 1024 * 1024
# The brokers' message_size_limit (deploy/mosquitto/*.conf): the largest payload Varco sends,
# an allow-list, with room for a little growth; anything larger is refused by the broker
# before it can fill the memory of the broker or of its subscribers.
BROKER_MESSAGE_SIZE_LIMIT = MAX_ALLOWLIST_BYTES + 256 * 1024
# And their max_packet_size: that payload with its topic and headers. The broker then drops a
# client announcing a larger packet as soon as it reads the length, before holding any of it.
BROKER_MAX_PACKET_SIZE = BROKER_MESSAGE_SIZE_LIMIT + 64 * 1024
# 100,000 records of 30 bytes are 4,000,000 characters of base64: the most a list can carry.
MAX_ALLOWLIST_CREDENTIALS = 100_000
MAX_PROFILES = 4096

DIGEST_BYTES = 12
# digest, profile, valid_from, valid_until (microseconds since the epoch, UTC)
RECORD = struct.Struct(">12sHqq")
NO_START = -(2**63)
NO_END = 2**63 - 1

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

ProfileId = Annotated[str, Meta(pattern=r"^[0-9]{1,4}\Z")]


def credential_digest(key: bytes, credential: Credential) -> bytes:
    """Return the keyed digest an allow-list holds for ``credential`` (96 bits).

    A pass is digested by its code's hash (``pass_code_hash``): the gateway keeps nothing else
    of the code, and lists the pass with ``digest_of(key, PASS, code_hash)``.
    """
    value = credential.value
    if credential.kind is CredentialKind.PASS:
        value = pass_code_hash(value)
    return digest_of(key, credential.kind, value)


def digest_of(key: bytes, kind: CredentialKind, value: str) -> bytes:
    """Return the keyed digest of a credential's kind and (normalised) value.

    Keyed BLAKE2b, a MAC by design (RFC 7693), three times as fast as HMAC-SHA256 here: a
    gateway works out one digest per credential and door controller for every whole list.
    """
    message = f"{kind.value}:{value}".encode()
    return hashlib.blake2b(message, key=key, digest_size=DIGEST_BYTES).digest()


def micros(at: datetime | None, default: int) -> int:
    """Return ``at`` in microseconds since the epoch (``default`` for none)."""
    return default if at is None else (at - _EPOCH) // _MICROSECOND


def pack_record(
    digest: bytes, profile: int, valid_from: datetime | None, valid_until: datetime | None
) -> bytes:
    """Return a credential's record: its digest, profile and validity (none: unbounded)."""
    return RECORD.pack(digest, profile, micros(valid_from, NO_START), micros(valid_until, NO_END))


def from_micros(value: int, default: int) -> datetime | None:
    """Return the time ``value`` stands for, or ``None`` if it is ``default``."""
    return None if value == default else _EPOCH + value * _MICROSECOND


class Access(_Payload, frozen=True, kw_only=True):
    """When a profile opens one door: its windows (none: any hour), and whether closures shut it."""

    windows: Annotated[list[Window], Meta(max_length=64)] = msgspec.field(default_factory=list)
    closed_on_closures: bool = True


class DoorSettings(_Payload, frozen=True, kw_only=True):
    """How a door behaves, whoever taps: its unlock time, lockdown and office hours."""

    unlock_seconds: UnlockSeconds
    locked_down: bool = False
    # Office hours: held unlocked in these windows, optionally only after a first grant that day.
    open_windows: Annotated[list[Window], Meta(max_length=64)] = msgspec.field(default_factory=list)
    open_after_first_entry: bool = False

    def __post_init__(self) -> None:
        _as_float(self, "unlock_seconds")


Profile = dict[Id, Access]


class Allowlist(_Payload, frozen=True, kw_only=True, tag="full", tag_field="kind"):
    """A controller's whole allow-list (gateway -> edge, retained).

    ``version`` grows with every issue, updates included; a door never trusts a list after
    ``expires_at``.
    """

    v: Literal[2] = 2
    version: Count
    issued_at: AwareDatetime
    expires_at: AwareDatetime
    timezone: Annotated[str, Meta(max_length=64, examples=["Europe/Rome"])] = "UTC"
    closures: Annotated[list[Interval], Meta(max_length=1000)] = msgspec.field(default_factory=list)
    doors: Annotated[dict[Id, DoorSettings], Meta(max_length=64)]
    profiles: Annotated[dict[ProfileId, Profile], Meta(max_length=MAX_PROFILES)] = msgspec.field(
        default_factory=dict
    )
    credentials: Annotated[bytes, Meta(max_length=MAX_ALLOWLIST_CREDENTIALS * RECORD.size)] = b""


class AllowlistDelta(_Payload, frozen=True, kw_only=True, tag="delta", tag_field="kind"):
    """What changed in a controller's allow-list since version ``since`` (gateway -> edge).

    Sections given replace the door's: ``timezone``, ``closures`` and ``doors`` whole, each
    profile of ``profiles`` whole. ``credentials`` are records to add or replace, ``removed``
    the digests of records to drop.
    """

    v: Literal[2] = 2
    since: Count
    version: Count
    issued_at: AwareDatetime
    expires_at: AwareDatetime
    timezone: Annotated[str, Meta(max_length=64)] | None = None
    closures: Annotated[list[Interval], Meta(max_length=1000)] | None = None
    doors: Annotated[dict[Id, DoorSettings], Meta(max_length=64)] | None = None
    profiles: Annotated[dict[ProfileId, Profile], Meta(max_length=MAX_PROFILES)] = msgspec.field(
        default_factory=dict
    )
    removed_profiles: Annotated[list[ProfileId], Meta(max_length=MAX_PROFILES)] = msgspec.field(
        default_factory=list
    )
    credentials: Annotated[bytes, Meta(max_length=MAX_ALLOWLIST_CREDENTIALS * RECORD.size)] = b""
    removed: Annotated[bytes, Meta(max_length=MAX_ALLOWLIST_CREDENTIALS * DIGEST_BYTES)] = b""


AllowlistMessage = Allowlist | AllowlistDelta


def check_records(records: bytes, *, unique_sorted: bool) -> str | None:
    """Return why ``records`` is not a valid block of records, or ``None`` if it is."""
    if len(records) % RECORD.size:
        return f"credentials: {len(records)} bytes is not a whole number of records"
    if unique_sorted:
        size = RECORD.size
        previous = b""
        for start in range(0, len(records), size):
            digest = records[start : start + DIGEST_BYTES]
            if digest <= previous:
                return "credentials: records are not sorted by digest, or repeat one"
            previous = digest
    return None


def iter_records(records: bytes) -> Iterator[tuple[bytes, int, int, int]]:
    """Yield ``(digest, profile, valid_from, valid_until)`` for each record."""
    return RECORD.iter_unpack(records)


def bisect_records(records: bytes | bytearray, digest: bytes) -> tuple[int, bool]:
    """Return where ``digest``'s record is (or would go) in sorted ``records``, and if it is."""
    size = RECORD.size
    low, high = 0, len(records) // size
    view = memoryview(records)
    while low < high:
        middle = (low + high) // 2
        start = middle * size
        found = bytes(view[start : start + DIGEST_BYTES])
        if found < digest:
            low = middle + 1
        elif found > digest:
            high = middle
        else:
            return start, True
    return low * size, False
