"""Field types every router shares, bounded so that no client input reaches the database raw.

Ids in URLs fit the database's integer, names carry no control characters (PostgreSQL refuses
NUL in text), and instants convert to UTC without leaving the calendar.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, AwareDatetime, Field

from varco.protocol import ID_PATTERN

MAX_ROW_ID = 2**31 - 1

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
