"""Field types every router shares, bounded so that no client input reaches the database raw.

Ids in URLs fit the database's integer, names carry no control or invisible characters, and
instants are RFC 3339 strings with an offset that convert to UTC without leaving the calendar.
Nothing is coerced: a boolean is ``true`` or ``false`` and a number is a JSON number, never
``0`` for ``false`` or ``"5"`` for 5 (pydantic's lax mode would take both).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol, TypeVar

from fastapi import HTTPException, Path, Query, status
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
    field_validator,
)

from varco.protocol import ID_PATTERN
from varco.protocol.schedule import CLOCK_PATTERN

MAX_ROW_ID = 2**31 - 1
R = TypeVar("R")

Clock = Annotated[str, Field(pattern=CLOCK_PATTERN, examples=["08:00"])]

# Refused in every name and text. C0 and C1 controls and DEL: they end lines and move the
# cursor in logs and terminals (and PostgreSQL refuses NUL). Characters that make a text read
# otherwise than it is: bidi embeddings, overrides and isolates ("Trojan Source": U+202A-U+202E,
# U+2066-U+2069), direction marks (U+200E, U+200F, U+061C), the zero-width space, word joiner
# and invisible operators (U+200B, U+2060-U+2064), the BOM (U+FEFF), line and paragraph
# separators (U+2028, U+2029), interlinear annotations (U+FFF9-U+FFFB), and lone surrogates,
# which are no text at all. The zero-width (non-)joiners U+200C and U+200D stay: Persian and
# Indic names and emoji need them.
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064"
    "\u2066-\u2069\ud800-\udfff\ufeff\ufff9-\ufffb]"
)


def _printable(value: str) -> str:
    found = _UNPRINTABLE.search(value)
    if found:
        raise ValueError(
            f"U+{ord(found[0]):04X} at position {found.start()} is a control or invisible "
            "character; names and texts are plain visible text"
        )
    return value


Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=120,
        description="Free text without control or invisible characters",
    ),
    AfterValidator(_printable),
]
# Numbers and booleans in bodies: JSON numbers and true/false only.
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID), Strict()]
Flag = Annotated[bool, Strict()]
Seconds = Annotated[float, Field(gt=0, le=300), Strict()]


# RFC 3339's date-time: a full date and time, and always the offset.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def _rfc3339(value: object) -> object:
    # pydantic alone reads 19929 and "19929" as seconds since 1970, and takes "T09:00" without
    # its seconds; a client that sends those has made a mistake we must not guess around.
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.fullmatch(value)):
        return value
    raise ValueError(
        "a time is an RFC 3339 string with its offset, such as 2026-12-01T09:00:00+01:00"
    )


def _in_calendar(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("this time falls outside the calendar once converted to UTC") from None


Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_in_calendar)]


def masked_uid(uid: str) -> str:
    """Hide all but the last four digits of a badge UID, for callers who must not copy it.

    Readers that check only the UID open for any card that answers with it: a viewer
    (a wall screen, a reporting script) tells taps and badges apart by the last digits, and
    only admins and operators, who register cards and look into refused taps, read all of it.
    """
    return "*" * max(len(uid) - 4, 0) + uid[-4:]


def path_id(what: str) -> object:
    """A numeric id in the URL, bounded like the database column."""
    return Path(ge=1, le=MAX_ROW_ID, description=f"The {what}'s id")


IdFilter = Annotated[str | None, Query(pattern=ID_PATTERN, max_length=64)]
IdPath = Annotated[str, Path(pattern=ID_PATTERN, max_length=64, description="The id")]


Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class WeeklyWindow(BaseModel):
    """``days`` from ``start`` to ``end``, site time; an ``end`` not after ``start`` runs past
    midnight (``fri 22:00-02:00`` ends on Saturday at 02:00)."""

    model_config = ConfigDict(extra="forbid")
    days: Annotated[list[Day], Field(min_length=1, max_length=7)]
    start: Clock
    end: Clock

    @field_validator("end")
    @classmethod
    def _not_empty(cls, end: str, info: ValidationInfo) -> str:
        if info.data.get("start") == end:
            raise ValueError("end equals start: leave the windows out to mean any hour")
        return end

    def day_bits(self) -> int:
        """Return the days as stored: bit 0 = Monday ... bit 6 = Sunday."""
        return sum(1 << DAYS.index(day) for day in set(self.days))


class StoredWindow(Protocol):
    days: int
    start_minute: int
    end_minute: int


def window_out(row: StoredWindow) -> dict[str, Any]:
    """Describe a stored weekly window as the API shows it."""
    return {
        "days": [DAYS[d] for d in range(7) if row.days & (1 << d)],
        "start": f"{row.start_minute // 60:02d}:{row.start_minute % 60:02d}",
        "end": f"{row.end_minute // 60:02d}:{row.end_minute % 60:02d}",
    }


def found(row: R | None, what: str) -> R:
    """Return ``row``, or answer 404 ``no <what>`` when there is none."""
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {what}")
    return row


def invalid(field: str, message: str) -> HTTPException:
    """A 422 for a value that passed the schema but not the model (an unknown zone, say),
    in the same shape as FastAPI's own validation errors, so clients read one kind of error."""
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [{"type": "value_error", "loc": ["body", *field.split(".")], "msg": message}],
    )
