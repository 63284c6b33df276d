"""Payload models, one per channel, each carrying its schema version.

Unknown fields are rejected and sizes are bounded: a payload either parses into exactly one
of these models or is refused with a reason a person can read.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Annotated, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from varco.protocol.schedule import Interval, Refusal, Schedule, Window
from varco.protocol.topics import ID_PATTERN, Channel

# One bound for every event payload; status is larger since it carries health figures.
MAX_EVENT_BYTES = 2048
MAX_STATUS_BYTES = 4096
# An allow-list holds a few thousand 32-character digests per door.
MAX_ALLOWLIST_BYTES = 4 * 1024 * 1024
MAX_ALLOWLIST_CREDENTIALS = 50_000

EventId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$", examples=["3f1c9a0e5b7d4c2a"])]
Id = Annotated[str, Field(pattern=ID_PATTERN, examples=["front-door"])]
Text = Annotated[str, Field(max_length=120)]
_HEX = frozenset("0123456789abcdefABCDEF")


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


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class Credential(_Payload):
    """What was presented at the reader: a badge UID (hex) or a guest pass code."""

    kind: CredentialKind = CredentialKind.BADGE
    value: Annotated[str, Field(pattern=r"^[0-9A-Za-z_-]{4,64}$", examples=["04A1B2C3D4"])]

    @field_validator("value")
    @classmethod
    def _badge_uid_is_hex(cls, value: str, info: ValidationInfo) -> str:
        # Readers differ in the case of a UID's hex digits; the store does not.
        if info.data.get("kind") is CredentialKind.BADGE:
            if any(c not in _HEX for c in value):
                raise ValueError("a badge UID is hexadecimal")
            return value.upper()
        return value


class OfflineDecision(_Payload):
    """What a door decided by itself when the gateway did not answer in time."""

    granted: bool
    reason: Reason
    allowlist_version: Annotated[int, Field(ge=0)] | None = None


# What a guest pass's QR code holds: this prefix, then the pass's code. A reader that types
# what it scans (a QR scanner in keyboard or serial mode) hands the door this text.
PASS_QR_PREFIX = "varco-pass:"


def pass_qr_text(code: str) -> str:
    """Return the text a guest pass's QR code carries."""
    return f"{PASS_QR_PREFIX}{code}"


def credential_of(reading: str) -> Credential:
    """Turn what a reader read (a badge UID, or a pass's QR text) into a credential."""
    if reading[: len(PASS_QR_PREFIX)].lower() == PASS_QR_PREFIX:
        return Credential(kind=CredentialKind.PASS, value=reading[len(PASS_QR_PREFIX) :])
    return Credential(value=reading)


class Tap(_Payload):
    """A credential presented at a door's reader (edge -> gateway).

    ``offline`` is set when the door decided without the gateway; the gateway then records
    that decision (what the door really did) instead of deciding again.
    """

    v: Literal[1] = 1
    event_id: EventId
    door: Id
    credential: Credential
    reader: Annotated[str, Field(max_length=32)] = "main"
    at: AwareDatetime
    offline: OfflineDecision | None = None


class Decision(_Payload):
    """The gateway's answer to a tap (gateway -> edge)."""

    v: Literal[1] = 1
    event_id: EventId
    door: Id
    granted: bool
    reason: Reason
    unlock_seconds: Annotated[float, Field(ge=0, le=300)] = 0.0
    display_name: Text | None = None
    decided_at: AwareDatetime


class DoorEvent(_Payload):
    """A change seen by a door's contact or alarm logic (edge -> gateway)."""

    # Built on first use, not at import: a desk node never sends one.
    model_config = ConfigDict(defer_build=True)

    v: Literal[1] = 1
    event_id: EventId
    door: Id
    state: DoorState
    at: AwareDatetime


class DeskEvent(_Payload):
    """A desk became occupied or free (edge -> gateway)."""

    v: Literal[1] = 1
    event_id: EventId
    desk: Id
    occupied: bool
    at: AwareDatetime


class Status(_Payload):
    """A device's health, retained; the last will carries ``state=offline``."""

    v: Literal[1] = 1
    state: DeviceState
    software: Annotated[str, Field(max_length=40)]
    started_at: AwareDatetime
    at: AwareDatetime
    uptime_seconds: Annotated[float, Field(ge=0)] = 0.0
    allowlist_version: Annotated[int, Field(ge=0)] | None = None
    allowlist_issued_at: AwareDatetime | None = None
    outbox_depth: Annotated[int, Field(ge=0)] = 0
    outbox_dropped: Annotated[int, Field(ge=0)] = 0


Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]


ScheduleId = Annotated[str, Field(pattern=r"^[a-z0-9]{1,16}$")]


class DoorAllowlist(_Payload):
    # Built on first use, not at import: a desk node never receives an allow-list.
    model_config = ConfigDict(defer_build=True)

    unlock_seconds: Annotated[float, Field(gt=0, le=300)]
    locked_down: bool = False
    # Office hours: held unlocked in these windows, optionally only after a first grant that day.
    open_windows: Annotated[list[Window], Field(max_length=64)] = []
    open_after_first_entry: bool = False
    # Each credential's digest and the schedule that says when it opens this door.
    credentials: Annotated[dict[Digest, ScheduleId], Field(max_length=MAX_ALLOWLIST_CREDENTIALS)]


class Allowlist(_Payload):
    """Who may open a device's doors, for deciding offline (gateway -> edge, retained).

    Credentials are keyed digests (``credential_digest``) with the device's own key, never raw
    UIDs. ``version`` grows with every issue (milliseconds since the epoch); a door never
    trusts a list after ``expires_at``.
    """

    # Built on first use, not at import: a desk node never receives one.
    model_config = ConfigDict(defer_build=True)

    v: Literal[1] = 1
    version: Annotated[int, Field(ge=0)]
    issued_at: AwareDatetime
    expires_at: AwareDatetime
    timezone: Annotated[str, Field(max_length=64, examples=["Europe/Rome"])] = "UTC"
    closures: Annotated[list[Interval], Field(max_length=1000)] = []
    schedules: Annotated[dict[ScheduleId, Schedule], Field(max_length=10_000)] = {}
    doors: Annotated[
        dict[Annotated[str, Field(pattern=ID_PATTERN)], DoorAllowlist], Field(max_length=64)
    ]


class CommandAction(enum.StrEnum):
    UNLOCK = "unlock"  # open the door now, for ``seconds``
    IDENTIFY = "identify"  # blink and beep, to find the device on the wall


class Command(_Payload):
    """An operator's order to a device (gateway -> edge); ignored once ``expires_at`` passes."""

    # Built on first use, not at import: most devices never receive one.
    model_config = ConfigDict(defer_build=True)

    v: Literal[1] = 1
    command_id: EventId
    action: CommandAction
    door: Id | None = None
    seconds: Annotated[float, Field(gt=0, le=300)] | None = None
    issued_at: AwareDatetime
    expires_at: AwareDatetime


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


def credential_digest(key: bytes, credential: Credential) -> str:
    """Return the keyed digest an allow-list holds for ``credential``."""
    message = f"{credential.kind.value}:{credential.value}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


Payload = Tap | Decision | DoorEvent | DeskEvent | Status | Allowlist | Command

MODELS: dict[Channel, type[Payload]] = {
    Channel.TAP: Tap,
    Channel.DECISION: Decision,
    Channel.DOOR: DoorEvent,
    Channel.DESK: DeskEvent,
    Channel.STATUS: Status,
    Channel.ALLOWLIST: Allowlist,
    Channel.COMMAND: Command,
}

_LIMITS: dict[Channel, int] = {
    Channel.STATUS: MAX_STATUS_BYTES,
    Channel.ALLOWLIST: MAX_ALLOWLIST_BYTES,
}

P = TypeVar("P", bound=_Payload)


def max_bytes(channel: Channel) -> int:
    """Return the largest payload accepted on ``channel``."""
    return _LIMITS.get(channel, MAX_EVENT_BYTES)


def encode(payload: _Payload) -> bytes:
    """Serialise a payload to its compact wire form."""
    return payload.model_dump_json(exclude_none=True).encode()


def decode(channel: Channel, raw: bytes) -> Payload:
    """Parse ``raw`` as the payload of ``channel``; raise ``PayloadError`` with the reason."""
    model = MODELS.get(channel)
    if model is None:
        raise PayloadError(f"no payload model for channel {channel.value!r}")
    return decode_as(model, raw, limit=max_bytes(channel))


def decode_as(model: type[P], raw: bytes, *, limit: int = MAX_EVENT_BYTES) -> P:
    """Parse ``raw`` as ``model``; raise ``PayloadError`` with a readable reason."""
    if len(raw) > limit:
        raise PayloadTooLargeError(f"payload of {len(raw)} bytes exceeds the {limit}-byte limit")
    try:
        # UTF-8 only: json.loads(bytes) would also guess UTF-16 and UTF-32.
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(
            f"payload is not JSON in UTF-8: {exc.reason} at byte {exc.start}"
        ) from None
    try:
        # Strict: "occupied": "yes" is refused, not read as true; times stay ISO 8601 strings.
        return model.model_validate_json(text, strict=True)
    except ValidationError as exc:
        raise PayloadError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    if errors and errors[0]["type"] == "json_invalid":
        return f"payload is not JSON: {errors[0]['ctx'].get('error', errors[0]['msg'])}"
    problems = []
    for error in errors[:5]:
        where = ".".join(str(part) for part in error["loc"]) or "payload"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)
