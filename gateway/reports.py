"""Usage reports from the SQL event log: presence per member, occupancy per desk and area.

The definitions, which cost sharing and billing rest on:

- **Presence session.** A granted tap at an "in" door opens a session for a member who has
  none open; further granted "in" taps keep it open. It closes at the member's next granted
  tap at an "out" door; else ``session_timeout`` (10 h by default) after their last granted
  tap; else at the first local midnight after it opened, whichever comes first: no session
  crosses midnight in the site's time zone, so a forgotten tap-out costs at most the rest of
  that day. Denied taps, taps by no member and "out" taps with no session open change
  nothing; taps at the same instant keep the order of the log. Sessions are clipped to the
  period and counted when something of them is left; hours present are their sum.
- **Desk occupancy.** A desk is occupied from an occupied event to the next free one for it,
  in the order of the events' own times; an event that repeats the desk's state changes
  nothing. Intervals are clipped to the period; one still open at its end ends there. Desk
  hours are their sum.
- **Utilisation** is over the whole period, not opening hours: desk hours / period hours x
  100; for an area, its desks' hours / (its desks x period hours).
- **Peak occupancy** is the most desks of an area occupied at once within the period, with
  the first instant it was reached; intervals are half-open, so a desk freed as another is
  taken counts once. For members, the peak is the most members present at once, site-wide.
- **Sites.** A report covers one site when it names one (``site``): the taps at its doors and
  the desks that have reported from it, with day boundaries in its time zone. Without, it
  covers every site, with day boundaries in the first site's (by id), else UTC.

Everything but ``load_usage_log`` is pure: values in, frozen values out.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.errors import GatewayError
from gateway.store.models import AccessEvent, Desk, DeskEventRecord, Door, Member, Site, Zone
from gateway.store.policy import site_zone

log = logging.getLogger(__name__)

GroupBy = Literal["member", "desk", "area"]

DEFAULT_SESSION_TIMEOUT = timedelta(hours=10)
DEFAULT_PERIOD = timedelta(days=30)
MAX_PERIOD = timedelta(days=400)
# Reports stay well inside datetime's range, so a day either side never overflows.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


class ReportError(GatewayError, ValueError):
    """A report asked for a period it cannot cover; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Interval:
    start: datetime
    end: datetime

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Period:
    """The half-open span ``[since, until)`` a report covers."""

    since: datetime
    until: datetime

    def __post_init__(self) -> None:
        for field, value in (("since", self.since), ("until", self.until)):
            if value.tzinfo is None:
                raise ReportError(field, "naive datetime: give the time with its offset")
            if not EARLIEST <= value <= LATEST:
                raise ReportError(
                    field, f"must lie between {EARLIEST.isoformat()} and {LATEST.isoformat()}"
                )
        if self.until <= self.since:
            raise ReportError("until", "until must be after since")
        if self.until - self.since > MAX_PERIOD:
            raise ReportError("until", f"a report covers at most {MAX_PERIOD.days} days")

    @property
    def duration(self) -> timedelta:
        return self.until - self.since

    def clip(self, start: datetime, end: datetime) -> Interval | None:
        """Return the part of ``[start, end)`` inside the period, or None if nothing is."""
        clipped = Interval(max(start, self.since), min(end, self.until))
        return clipped if clipped.start < clipped.end else None


def period_of(since: datetime | None, until: datetime | None, now: datetime) -> Period:
    """Build the period asked for: ``until`` defaults to now, ``since`` to 30 days before it."""
    end = now if until is None else until
    if since is None:
        try:
            since = end - DEFAULT_PERIOD
        except OverflowError:
            raise ReportError("until", "falls outside the calendar") from None
    return Period(since, end)


@dataclass(frozen=True, slots=True)
class Tap:
    member_id: int
    at: datetime
    direction: str  # the door's: "in" or "out"
    granted: bool = True


@dataclass(frozen=True, slots=True)
class DeskChange:
    desk_id: str
    occupied: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class PresenceSession:
    member_id: int
    interval: Interval


@dataclass(frozen=True, slots=True)
class Peak:
    count: int
    at: datetime | None  # the first instant the count was reached; None when it is 0


@dataclass(frozen=True, slots=True)
class DeskInfo:
    id: str
    name: str
    area_id: str


@dataclass(frozen=True, slots=True)
class UsageLog:
    """What a report reads: the site's time zone, the events and the names they refer to."""

    timezone: tzinfo
    taps: Sequence[Tap]
    desk_changes: Sequence[DeskChange]
    members: Mapping[int, str]
    desks: Sequence[DeskInfo]
    areas: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class MemberUsage:
    member_id: int
    name: str | None  # None for a member deleted since
    present: timedelta
    sessions: int


@dataclass(frozen=True, slots=True)
class DeskUsage:
    desk_id: str
    name: str
    area_id: str
    occupied: timedelta
    utilisation_pct: float


@dataclass(frozen=True, slots=True)
class AreaUsage:
    area_id: str
    name: str
    desks: int
    occupied: timedelta
    utilisation_pct: float
    peak: Peak


@dataclass(frozen=True, slots=True)
class PresenceReport:
    members: tuple[MemberUsage, ...]
    present: timedelta
    sessions: int
    peak: Peak


@dataclass(frozen=True, slots=True)
class OccupancyReport:
    """Desk and area usage, with the totals over every desk of the site."""

    desks: tuple[DeskUsage, ...]
    areas: tuple[AreaUsage, ...]
    occupied: timedelta
    utilisation_pct: float
    peak: Peak


def next_midnight(at: datetime, zone: tzinfo) -> datetime:
    """Return the first midnight in ``zone`` after ``at``, in UTC."""
    day = at.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def day_start(at: datetime, zone: tzinfo) -> datetime:
    """Return the midnight in ``zone`` that starts the local day of ``at``, in UTC."""
    return datetime.combine(at.astimezone(zone).date(), time(), tzinfo=zone).astimezone(UTC)


def presence_sessions(
    taps: Iterable[Tap], zone: tzinfo, timeout: timedelta = DEFAULT_SESSION_TIMEOUT
) -> list[PresenceSession]:
    """Return every member's presence sessions, unclipped, in order of their start."""
    by_member: dict[int, list[Tap]] = defaultdict(list)
    for tap in taps:
        if tap.granted:
            by_member[tap.member_id].append(tap)
    sessions: list[PresenceSession] = []
    for member_id, member_taps in by_member.items():
        start: datetime | None = None
        midnight = deadline = datetime.max.replace(tzinfo=UTC)
        for tap in sorted(member_taps, key=lambda t: t.at):
            if start is not None and tap.at >= deadline:
                sessions.append(PresenceSession(member_id, Interval(start, deadline)))
                start = None
            if tap.direction == "out" and start is not None:
                sessions.append(PresenceSession(member_id, Interval(start, tap.at)))
                start = None
            elif tap.direction == "in":
                if start is None:
                    start, midnight = tap.at, next_midnight(tap.at, zone)
                deadline = min(tap.at + timeout, midnight)
        if start is not None:
            sessions.append(PresenceSession(member_id, Interval(start, deadline)))
    sessions.sort(key=lambda s: (s.interval.start, s.member_id))
    return sessions


def clip_sessions(sessions: Iterable[PresenceSession], period: Period) -> list[PresenceSession]:
    """Return the parts of ``sessions`` inside ``period``, dropping those with nothing left."""
    clipped = []
    for session in sessions:
        interval = period.clip(session.interval.start, session.interval.end)
        if interval is not None:
            clipped.append(PresenceSession(session.member_id, interval))
    return clipped


def desk_intervals(changes: Iterable[DeskChange], period: Period) -> dict[str, list[Interval]]:
    """Return each desk's occupied intervals within ``period``, in order."""
    by_desk: dict[str, list[DeskChange]] = defaultdict(list)
    for change in changes:
        by_desk[change.desk_id].append(change)
    intervals: dict[str, list[Interval]] = {}
    for desk_id, desk_changes in by_desk.items():
        found: list[Interval | None] = []
        taken: datetime | None = None
        for change in sorted(desk_changes, key=lambda c: c.at):
            if change.at >= period.until:
                break
            if change.occupied and taken is None:
                taken = change.at
            elif not change.occupied and taken is not None:
                found.append(period.clip(taken, change.at))
                taken = None
        if taken is not None:
            found.append(period.clip(taken, period.until))
        intervals[desk_id] = [interval for interval in found if interval is not None]
    return intervals


def peak(intervals: Iterable[Interval]) -> Peak:
    """Return the most intervals overlapping at once and the first instant it happened."""
    # At one instant ends sort before starts (-1 < 1): the intervals are half-open.
    edges = sorted(
        edge
        for interval in intervals
        if interval.start < interval.end
        for edge in ((interval.start, 1), (interval.end, -1))
    )
    count, best, best_at = 0, 0, None
    for at, step in edges:
        count += step
        if count > best:
            best, best_at = count, at
    return Peak(best, best_at)


def presence_report(
    log: UsageLog, period: Period, timeout: timedelta = DEFAULT_SESSION_TIMEOUT
) -> PresenceReport:
    """Sum each member's presence within ``period``; members never present are left out."""
    sessions = clip_sessions(presence_sessions(log.taps, log.timezone, timeout), period)
    present: dict[int, timedelta] = defaultdict(timedelta)
    counts: dict[int, int] = defaultdict(int)
    for session in sessions:
        present[session.member_id] += session.interval.duration
        counts[session.member_id] += 1
    members = tuple(
        MemberUsage(member_id, log.members.get(member_id), present[member_id], counts[member_id])
        for member_id in sorted(present)
    )
    return PresenceReport(
        members=members,
        present=sum(present.values(), timedelta()),
        sessions=len(sessions),
        peak=peak(session.interval for session in sessions),
    )


def _utilisation(occupied: timedelta, desks: int, period: Period) -> float:
    if desks == 0:
        return 0.0
    return occupied / (period.duration * desks) * 100


def occupancy_report(log: UsageLog, period: Period) -> OccupancyReport:
    """Sum each known desk's and area's occupancy within ``period``, with the areas' peaks."""
    intervals = desk_intervals(log.desk_changes, period)
    desks = tuple(
        DeskUsage(
            desk_id=desk.id,
            name=desk.name,
            area_id=desk.area_id,
            occupied=occupied,
            utilisation_pct=_utilisation(occupied, 1, period),
        )
        for desk in sorted(log.desks, key=lambda d: (d.area_id, d.id))
        for occupied in [sum((i.duration for i in intervals.get(desk.id, [])), timedelta())]
    )
    areas = []
    for area_id in sorted({desk.area_id for desk in desks}):
        in_area = [desk for desk in desks if desk.area_id == area_id]
        occupied = sum((desk.occupied for desk in in_area), timedelta())
        areas.append(
            AreaUsage(
                area_id=area_id,
                name=log.areas.get(area_id, area_id),
                desks=len(in_area),
                occupied=occupied,
                utilisation_pct=_utilisation(occupied, len(in_area), period),
                peak=peak(i for desk in in_area for i in intervals.get(desk.desk_id, [])),
            )
        )
    occupied = sum((desk.occupied for desk in desks), timedelta())
    return OccupancyReport(
        desks=desks,
        areas=tuple(areas),
        occupied=occupied,
        utilisation_pct=_utilisation(occupied, len(desks), period),
        peak=peak(i for desk in desks for i in intervals.get(desk.desk_id, [])),
    )


def site_timezone(session: Session) -> tzinfo:
    """Return the first site's time zone, or UTC when there is no site or it is unknown."""
    site = session.scalars(select(Site).order_by(Site.id).limit(1)).first()
    return UTC if site is None else site_zone(site)


def load_usage_log(session: Session, period: Period, site: Site | None = None) -> UsageLog:
    """Read the taps, desk events and names a report over ``period`` needs.

    With ``site``, only what happened there, in its time zone; its desks are those that have
    reported from it. Without, everything, in the first site's time zone.
    """
    zone = site_timezone(session) if site is None else site_zone(site)
    at_site = [] if site is None else [AccessEvent.site == site.id]
    desks_at_site = [] if site is None else [DeskEventRecord.site == site.id]
    # No session crosses local midnight, so none open at ``since`` began before its day.
    taps = session.execute(
        select(AccessEvent.member_id, AccessEvent.tapped_at, Door.direction)
        .join(Door, Door.id == AccessEvent.door_id)
        .where(
            AccessEvent.granted.is_(True),
            AccessEvent.member_id.is_not(None),
            AccessEvent.tapped_at >= day_start(period.since, zone),
            AccessEvent.tapped_at < period.until,
            *at_site,
        )
        .order_by(AccessEvent.tapped_at, AccessEvent.event_id)
    )
    # A desk's state at ``since`` is that of its last event before, however old.
    ranked = (
        select(
            DeskEventRecord.desk_id,
            DeskEventRecord.occupied,
            DeskEventRecord.at,
            func.row_number()
            .over(
                partition_by=DeskEventRecord.desk_id,
                order_by=(DeskEventRecord.at.desc(), DeskEventRecord.event_id.desc()),
            )
            .label("rank"),
        )
        .where(DeskEventRecord.at < period.since, *desks_at_site)
        .subquery()
    )
    before = session.execute(
        select(ranked.c.desk_id, ranked.c.occupied, ranked.c.at).where(ranked.c.rank == 1)
    )
    during = session.execute(
        select(DeskEventRecord.desk_id, DeskEventRecord.occupied, DeskEventRecord.at)
        .where(DeskEventRecord.at >= period.since, DeskEventRecord.at < period.until)
        .where(*desks_at_site)
        .order_by(DeskEventRecord.at, DeskEventRecord.event_id)
    )
    desks = select(Desk.id, Desk.name, Desk.zone_id)
    if site is not None:
        reported = select(DeskEventRecord.desk_id).where(*desks_at_site).distinct()
        desks = desks.where(Desk.id.in_(reported))
    return UsageLog(
        timezone=zone,
        taps=[Tap(member, at, direction) for member, at, direction in taps if member is not None],
        desk_changes=[DeskChange(*row) for row in [*before, *during]],
        members={id_: name for id_, name in session.execute(select(Member.id, Member.name))},
        desks=[DeskInfo(*row) for row in session.execute(desks)],
        areas={id_: name for id_, name in session.execute(select(Zone.id, Zone.name))},
    )
