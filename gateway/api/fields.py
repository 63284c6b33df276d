"""Field types every router shares, bounded so that no client input reaches the database raw.

Ids in URLs fit the database's integer, names carry no control characters (PostgreSQL refuses
NUL in text), and instants convert to UTC without leaving the calendar.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol, TypeVar

from fastapi import HTTPException, Path, Query, status
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from varco.protocol import ID_PATTERN
from varco.protocol.schedule import CLOCK_PATTERN

MAX_ROW_ID = 2**31 - 1
R = TypeVar("R")

Clock = Annotated[str, Field(pattern=CLOCK_PATTERN, examples=["08:00"])]

Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=120,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description="Free text without control characters",
    ),
]
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]


def _in_calendar(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("this time falls outside the calendar once converted to UTC") from None


Instant = Annotated[AwareDatetime, AfterValidator(_in_calendar)]


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
