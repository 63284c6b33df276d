"""When a credential opens a door: weekly windows in the site's local time, a validity period,
and closures. Shared by the gateway (online decisions) and the edge (offline decisions), so
that a door decides the same way with or without the gateway.

A window ``start``-``end`` on a day opens at ``start`` local time; when ``end`` is not after
``start`` it runs past midnight into the next day (Friday 22:00-02:00 ends Saturday 02:00).
Local time is the site's wall clock, through ``zoneinfo``: a window "08:00-18:00" opens at
08:00 on both sides of a daylight-saving change, never an hour early or late.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Annotated

import msgspec
from msgspec import Meta

from varco.protocol.validation import FieldError, whole

CLOCK_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d$"


Clock = Annotated[str, Meta(pattern=whole(CLOCK_PATTERN), examples=["08:00"])]
AwareDatetime = Annotated[datetime, Meta(tz=True)]
Day = Annotated[int, Meta(ge=0, le=6)]


class _Rule(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Part of an allow-list: immutable, keyword-built, unknown fields refused."""


class Refusal(enum.StrEnum):
    """Why a schedule does not open now; callers turn it into a ``Reason``."""

    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    CLOSED = "closed"
    OUTSIDE_HOURS = "outside_hours"


# Every clock time there is: windows are checked at every tap, and a lookup beats parsing.
_MINUTES = {f"{m // 60:02d}:{m % 60:02d}": m for m in range(24 * 60)}


def minutes(clock: str) -> int:
    """Return the minutes since midnight of an ``HH:MM`` clock time."""
    minute = _MINUTES.get(clock)
    if minute is None:
        raise ValueError(f"not a clock time HH:MM: {clock!r}")
    return minute


class Window(_Rule, frozen=True, kw_only=True):
    """Open on ``days`` (0 = Monday ... 6 = Sunday) from ``start`` to ``end``, local time."""

    days: Annotated[list[Day], Meta(min_length=1, max_length=7)]
    start: Clock
    end: Clock

    def __post_init__(self) -> None:
        # Checked here, not only when decoding: the gateway builds windows from its store.
        if not self.days or any(not 0 <= day <= 6 for day in self.days):
            raise FieldError("days", "0 (Monday) to 6 (Sunday), at least one")
        minutes(self.start), minutes(self.end)  # each a clock time HH:MM
        if self.start == self.end:
            raise FieldError("end", "equals start; leave a zone without windows to open it all day")
        msgspec.structs.force_setattr(self, "days", sorted(set(self.days)))

    def contains(self, local: datetime) -> bool:
        """Tell whether the local wall-clock time ``local`` falls in this window."""
        minute = local.hour * 60 + local.minute
        day = local.weekday()
        start, end = minutes(self.start), minutes(self.end)
        if start < end:
            return day in self.days and start <= minute < end
        # Past midnight: the evening of a listed day, or the early hours of the day after.
        evening = day in self.days and minute >= start
        small_hours = (day - 1) % 7 in self.days and minute < end
        return evening or small_hours


class Interval(_Rule, frozen=True, kw_only=True):
    starts_at: AwareDatetime
    ends_at: AwareDatetime


class Schedule(_Rule, frozen=True, kw_only=True):
    """Everything time-bound about one credential at one door."""

    windows: Annotated[list[Window], Meta(max_length=64)] = []
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    closed_on_closures: bool = True

    def check(self, at: datetime, zone: tzinfo, closures: list[Interval]) -> Refusal | None:
        """Return why this schedule keeps the door shut at ``at``, or ``None`` if it opens."""
        return refusal(
            at,
            zone,
            closures,
            windows=self.windows,
            valid_from=self.valid_from,
            valid_until=self.valid_until,
            closed_on_closures=self.closed_on_closures,
        )


def refusal(
    at: datetime,
    zone: tzinfo,
    closures: Sequence[Interval],
    *,
    windows: Sequence[Window],
    valid_from: datetime | None,
    valid_until: datetime | None,
    closed_on_closures: bool,
) -> Refusal | None:
    """Return why a credential with these terms stays shut out at ``at``, or ``None``.

    The one rule the gateway (online) and the doors (offline) both apply.
    """
    if valid_from is not None and at < valid_from:
        return Refusal.NOT_YET_VALID
    if valid_until is not None and at >= valid_until:
        return Refusal.EXPIRED
    if closed_on_closures and any(c.starts_at <= at < c.ends_at for c in closures):
        return Refusal.CLOSED
    if windows:
        local = at.astimezone(zone)
        if not any(window.contains(local) for window in windows):
            return Refusal.OUTSIDE_HOURS
    return None
