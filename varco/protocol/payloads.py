"""Payload models, one per channel, each carrying its schema version.

Unknown fields are rejected and sizes are bounded: a payload either parses into exactly one
of these models or is refused with a reason a person can read.

The models are msgspec structs, not pydantic models: the edge agent runs on a Pi Zero 2 W
within 40 MB, and pydantic alone would take ~11 MB of it (bench/README.md). A struct checks
its bounds when it is decoded, not when it is built in Python; ``encode`` therefore checks
what it is about to send as the receiver will, so that nothing leaves that the other side
would refuse.
"""

from __future__ import annotations

import enum
import hashlib
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta

from varco.protocol.schedule import Refusal
from varco.protocol.topics import ID_PATTERN
from varco.protocol.validation import FieldError, explain, whole

# One bound for every event payload; status is larger since it carries health figures.
MAX_EVENT_BYTES = 2048
MAX_STATUS_BYTES = 4096
# Event ids in one receipt, and the bytes they take at most (64-character ids, quoted).
MAX_RECEIPT_IDS = 200
MAX_RECEIPT_BYTES = 2 * MAX_RECEIPT_IDS * 67 + 256

EventId = Annotated[
    str, Meta(pattern=whole(r"^[A-Za-z0-9_-]{8,64}$"), examples=["3f1c9a0e5b7d4c2a"])
]
Id = Annotated[str, Meta(pattern=whole(ID_PATTERN), examples=["front-door"])]
Text = Annotated[str, Meta(max_length=120)]
AwareDatetime = Annotated[datetime, Meta(tz=True)]
Count = Annotated[int, Meta(ge=0)]
Seconds = Annotated[float, Meta(ge=0)]
UnlockSeconds = Annotated[float, Meta(gt=0, le=300)]
_HEX = frozenset("0123456789abcdefABCDEF")
_CREDENTIAL_VALUE = re.compile(r"[0-9A-Za-z_-]{4,64}")


class PayloadError(ValueError):
    """A payload that is not JSON or not valid for its channel."""


class PayloadTooLargeError(PayloadError):
    """A payload over its channel's size bound; it is refused before it is parsed."""


class Reason(enum.StrEnum):
    """Why a door was opened or kept shut; every denial names something a person can fix."""

    GRANTED = "granted"
    UNKNOWN_BADGE = "unknown_badge"
    BADGE_REVOKED = "badge_revoked"
    MEMBER_SUSPENDED = "member_suspended"
    WRONG_ZONE = "wrong_zone"
    UNKNOWN_DOOR = "unknown_door"
    MEMBERSHIP_NOT_YET_VALID = "membership_not_yet_valid"
    MEMBERSHIP_EXPIRED = "membership_expired"
    OUTSIDE_HOURS = "outside_hours"
    HOLIDAY = "holiday"
    ANTI_PASSBACK = "anti_passback"
    LOCKDOWN = "lockdown"
    UNKNOWN_PASS = "unknown_pass"
    PASS_REVOKED = "pass_revoked"
    PASS_NOT_YET_VALID = "pass_not_yet_valid"
    PASS_EXPIRED = "pass_expired"
    # Decided at the door, without the gateway:
    NOT_IN_ALLOWLIST = "not_in_allowlist"
    NO_ALLOWLIST = "no_allowlist"  # none cached, or expired: the door failed secure
    FAIL_SAFE = "fail_safe"  # none cached, or expired: the door failed safe (opened)


class CredentialKind(enum.StrEnum):
    BADGE = "badge"
    PASS = "pass"


class DoorState(enum.StrEnum):
    OPENED = "opened"
    CLOSED = "closed"
    HELD_OPEN = "held_open"
    FORCED_OPEN = "forced_open"
    TAMPER = "tamper"


class DeviceState(enum.StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class _Payload(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A wire model: immutable, keyword-built, unknown fields refused when decoding."""


def _as_float(payload: _Payload, *names: str) -> None:
    # A float field built from an int in Python stays an int in a struct; the wire says 3.0.
    for name in names:
        value = getattr(payload, name)
        if type(value) is int:
            msgspec.structs.force_setattr(payload, name, float(value))


class Credential(_Payload, frozen=True, kw_only=True):
    """What was presented at the reader: a badge UID (hex) or a guest pass code."""

    kind: CredentialKind = CredentialKind.BADGE
    value: Annotated[str, Meta(pattern=whole(r"^[0-9A-Za-z_-]{4,64}$"), examples=["04A1B2C3D4"])]

    def __post_init__(self) -> None:
        # Checked here too, not only when decoding: readers build credentials in Python.
        if not _CREDENTIAL_VALUE.fullmatch(self.value):
            raise FieldError("value", "a credential is 4 to 64 letters, digits, '_' or '-'")
        # Readers differ in the case of a UID's hex digits; the store does not.
        if self.kind is CredentialKind.BADGE:
            if any(c not in _HEX for c in self.value):
                raise FieldError("value", "a badge UID is hexadecimal")
            msgspec.structs.force_setattr(self, "value", self.value.upper())

    def masked(self) -> str:
        """Name the credential for a log line: a pass without its code, a badge by its last
        four digits. A code opens its doors, and a UID is what a cloned card replays."""
        if self.kind is CredentialKind.PASS:
            return "a pass"
        return f"badge {'*' * max(len(self.value) - 4, 0)}{self.value[-4:]}"


class OfflineDecision(_Payload, frozen=True, kw_only=True):
    """What a door decided by itself when the gateway did not answer in time."""

    granted: bool
    reason: Reason
    allowlist_version: Count | None = None


# What a guest pass's QR code holds: this prefix, then the pass's code. A reader that types
# what it scans (a QR scanner in keyboard or serial mode) hands the door this text.
PASS_QR_PREFIX = "varco-pass:"


def pass_code_hash(code: str) -> str:
    """Return what the gateway keeps of a guest pass's code: its SHA-256, hex.

    A fast hash suffices: codes carry 80 random bits. A door hashes a presented code the same
    way before it looks it up (``credential_digest``), so the gateway, which never keeps the
    code, can still list the pass.
    """
    return hashlib.sha256(code.encode()).hexdigest()


def pass_qr_text(code: str) -> str:
    """Return the text a guest pass's QR code carries."""
    return f"{PASS_QR_PREFIX}{code}"


def credential_of(reading: str) -> Credential:
    """Turn what a reader read (a badge UID, or a pass's QR text) into a credential."""
    if reading[: len(PASS_QR_PREFIX)].lower() == PASS_QR_PREFIX:
        return Credential(kind=CredentialKind.PASS, value=reading[len(PASS_QR_PREFIX) :])
    return Credential(value=reading)


class Tap(_Payload, frozen=True, kw_only=True):
    """A credential presented at a door's reader (edge -> gateway).

    ``offline`` is set when the door decided without the gateway; the gateway then records
    that decision (what the door really did) instead of deciding again.
    """

    v: Literal[1] = 1
    event_id: EventId
    door: Id
    credential: Credential
    reader: Annotated[str, Meta(max_length=32)] = "main"
    at: AwareDatetime
    offline: OfflineDecision | None = None


class Decision(_Payload, frozen=True, kw_only=True):
    """The gateway's answer to a tap (gateway -> edge)."""

    v: Literal[1] = 1
    event_id: EventId
    door: Id
    granted: bool
    reason: Reason
    unlock_seconds: Annotated[float, Meta(ge=0, le=300)] = 0.0
    display_name: Text | None = None
    decided_at: AwareDatetime

    def __post_init__(self) -> None:
        _as_float(self, "unlock_seconds")


class Receipt(_Payload, frozen=True, kw_only=True):
    """What became of a device's events at the gateway (gateway -> edge).

    ``committed``: stored in SQL (now, or already before: a redelivery). ``refused``: never
    will be (the gateway logged and counted why: a door not the device's, a time it cannot
    believe...). Either way the edge may forget them; until then it keeps each in its outbox
    and sends it again, since a broker's PUBACK is no proof that anything was stored.
    """

    v: Literal[1] = 1
    committed: Annotated[tuple[EventId, ...], Meta(max_length=MAX_RECEIPT_IDS)] = ()
    refused: Annotated[tuple[EventId, ...], Meta(max_length=MAX_RECEIPT_IDS)] = ()


class DoorEvent(_Payload, frozen=True, kw_only=True):
    """A change seen by a door's contact or alarm logic (edge -> gateway)."""

    v: Literal[1] = 1
    event_id: EventId
    door: Id
    state: DoorState
    at: AwareDatetime


class DeskEvent(_Payload, frozen=True, kw_only=True):
    """A desk became occupied or free (edge -> gateway)."""

    v: Literal[1] = 1
    event_id: EventId
    desk: Id
    occupied: bool
    at: AwareDatetime


class Status(_Payload, frozen=True, kw_only=True):
    """A device's health, retained; the last will carries ``state=offline``."""

    v: Literal[1] = 1
    state: DeviceState
    software: Annotated[str, Meta(max_length=40)]
    started_at: AwareDatetime
    at: AwareDatetime
    uptime_seconds: Seconds = 0.0
    allowlist_version: Count | None = None
    allowlist_issued_at: AwareDatetime | None = None
    outbox_depth: Count = 0
    outbox_dropped: Count = 0
    # The config (varco.protocol.device_config) the device runs, and why it refused a newer one.
    config_version: Count | None = None
    config_error: Annotated[str, Meta(max_length=300)] | None = None

    def __post_init__(self) -> None:
        _as_float(self, "uptime_seconds")


class CommandAction(enum.StrEnum):
    UNLOCK = "unlock"  # open the door now, for ``seconds``
    IDENTIFY = "identify"  # blink and beep, to find the device on the wall


class Command(_Payload, frozen=True, kw_only=True):
    """An operator's order to a device (gateway -> edge); ignored once ``expires_at`` passes."""

    v: Literal[1] = 1
    command_id: EventId
    action: CommandAction
    door: Id | None = None
    seconds: UnlockSeconds | None = None
    issued_at: AwareDatetime
    expires_at: AwareDatetime

    def __post_init__(self) -> None:
        _as_float(self, "seconds")


_REFUSALS = {
    CredentialKind.BADGE: {
        Refusal.NOT_YET_VALID: Reason.MEMBERSHIP_NOT_YET_VALID,
        Refusal.EXPIRED: Reason.MEMBERSHIP_EXPIRED,
        Refusal.CLOSED: Reason.HOLIDAY,
        Refusal.OUTSIDE_HOURS: Reason.OUTSIDE_HOURS,
    },
    CredentialKind.PASS: {
        Refusal.NOT_YET_VALID: Reason.PASS_NOT_YET_VALID,
        Refusal.EXPIRED: Reason.PASS_EXPIRED,
        Refusal.CLOSED: Reason.HOLIDAY,
        Refusal.OUTSIDE_HOURS: Reason.OUTSIDE_HOURS,
    },
}


def refusal_reason(refusal: Refusal, kind: CredentialKind) -> Reason:
    """Say why a schedule refused, in the words a member (or a guest) can act on."""
    return _REFUSALS[kind][refusal]


P = TypeVar("P", bound=msgspec.Struct)


def encode(payload: _Payload) -> bytes:
    """Serialise a payload to its compact wire form (no ``null`` fields).

    Raise ``PayloadError`` if the receiver would refuse it (a bound or a pattern broken).
    """
    data = _ENCODER.encode(_without_none(msgspec.to_builtins(payload)))
    try:
        _decoder(type(payload)).decode(data)
    except msgspec.ValidationError as exc:
        raise PayloadError(f"not sent: {_describe(exc)}") from None
    return data


def decode_as(model: type[P], raw: bytes, *, limit: int = MAX_EVENT_BYTES) -> P:
    """Parse ``raw`` as ``model``; raise ``PayloadError`` with a readable reason."""
    if len(raw) > limit:
        raise PayloadTooLargeError(f"payload of {len(raw)} bytes exceeds the {limit}-byte limit")
    try:
        # UTF-8 only, checked whole: a bad byte is named, never replaced or guessed around.
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(
            f"payload is not JSON in UTF-8: {exc.reason} at byte {exc.start}"
        ) from None
    try:
        # Strict: "occupied": "yes" is refused, not read as true; times are RFC 3339 strings.
        return _decoder(model).decode(raw)
    except msgspec.ValidationError as exc:
        raise PayloadError(_describe(exc)) from None
    except msgspec.DecodeError as exc:
        raise PayloadError(f"payload is not JSON: {exc}") from None


_ENCODER = msgspec.json.Encoder()
# Built on first use: a desk node never decodes an allow-list or a command.
_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def _decoder(model: type[P]) -> msgspec.json.Decoder[P]:
    decoder = _DECODERS.get(model)
    if decoder is None:
        decoder = _DECODERS[model] = msgspec.json.Decoder(model)
    return decoder


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def _describe(exc: msgspec.ValidationError) -> str:
    where, reason = explain(exc)
    return f"{where or 'payload'}: {reason}"


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)
