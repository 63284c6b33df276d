"""Usage reports on a scripted day of taps and desk changes, in Rome, with known answers.

``tests/gateway/test_reports_api.py`` plays the same day through the event log and the API.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest

from gateway.reports import (
    MAX_PERIOD,
    AreaUsage,
    DeskChange,
    DeskInfo,
    DeskUsage,
    Interval,
    MemberUsage,
    Peak,
    Period,
    PresenceSession,
    ReportError,
    Tap,
    UsageLog,
    day_start,
    desk_intervals,
    next_midnight,
    occupancy_report,
    peak,
    period_of,
    presence_report,
    presence_sessions,
)

ROME = ZoneInfo("Europe/Rome")
ADA, GRACE, LINUS, BARBARA = 1, 2, 3, 4
NAMES = {ADA: "Ada Lovelace", GRACE: "Grace Hopper", LINUS: "Linus Torvalds", BARBARA: "Barbara"}


def at(clock: str, day: int = 4) -> datetime:
    """Return ``clock`` (HH:MM) on the ``day`` of March 2025, Rome time (UTC+1 then)."""
    hour, minute = map(int, clock.split(":"))
    return datetime(2025, 3, day, hour, minute, tzinfo=ROME)


# The scripted day, in the log's order: (time, member, door direction, granted).
TAPS: list[tuple[str, str, str, bool]] = [
    ("09:00", "ada", "in", True),
    ("09:30", "linus", "in", False),  # denied: opens nothing
    ("10:00", "grace", "in", True),
    ("11:00", "grace", "in", True),  # the offices door: the same session, its timeout restarts
    ("12:30", "ada", "out", True),
    ("13:30", "ada", "in", True),  # no tap-out: the 10 h timeout ends it at 23:30
    ("15:00", "grace", "out", False),  # denied: closes nothing
    ("18:00", "grace", "out", True),
    ("18:05", "grace", "out", True),  # no session open: nothing
    ("20:00", "barbara", "in", True),
    ("21:00", "barbara", "in", True),  # the timeout would end it at 07:00: midnight does
    ("22:00", "linus", "out", True),  # no session open: nothing
]
# (desk, time, occupied, day), deliberately out of order: events count by their own time.
DESK_CHANGES: list[tuple[str, str, bool, int]] = [
    ("desk-1", "12:25", False, 4),
    ("desk-1", "09:05", True, 4),
    ("desk-2", "20:00", False, 3),  # the day before: free all night
    ("desk-2", "10:00", True, 4),
    ("desk-2", "11:00", True, 4),  # a repeat: ignored
    ("desk-1", "13:35", True, 4),
    ("desk-1", "17:05", False, 4),
    ("room-1", "16:00", True, 4),  # never freed: clipped at the period's end
    ("desk-2", "18:00", False, 4),
    ("desk-2", "18:30", False, 4),  # a repeat: ignored
    ("desk-x", "10:00", True, 4),  # no such desk: in no row
]
DESKS = [
    DeskInfo("room-1", "Room 1", "rooms"),
    DeskInfo("desk-2", "Desk 2", "open-space"),
    DeskInfo("desk-1", "Desk 1", "open-space"),
]
AREAS = {"open-space": "Open space", "rooms": "Meeting rooms", "lobby": "Lobby"}
MEMBER_IDS = {"ada": ADA, "grace": GRACE, "linus": LINUS, "barbara": BARBARA}

DAY = Period(at("00:00"), at("00:00", day=5))
MIDDAY = Period(at("12:00"), at("14:00"))


def log() -> UsageLog:
    return UsageLog(
        timezone=ROME,
        taps=[Tap(MEMBER_IDS[who], at(clock), door, ok) for clock, who, door, ok in TAPS],
        desk_changes=[
            DeskChange(desk, on, at(clock, day)) for desk, clock, on, day in DESK_CHANGES
        ],
        members=NAMES,
        desks=DESKS,
        areas=AREAS,
    )


def hours(value: float) -> timedelta:
    return timedelta(hours=value)


Usage = TypeVar("Usage", DeskUsage, AreaUsage)


def rounded(usages: tuple[Usage, ...]) -> tuple[Usage, ...]:
    """Round each utilisation to 4 decimals, so the expected values can be written out."""
    return tuple(replace(u, utilisation_pct=round(u.utilisation_pct, 4)) for u in usages)


def test_sessions_open_at_an_in_tap_and_close_at_tap_out_timeout_or_midnight() -> None:
    sessions = presence_sessions(log().taps, ROME)

    assert sessions == [
        PresenceSession(ADA, Interval(at("09:00"), at("12:30"))),
        PresenceSession(GRACE, Interval(at("10:00"), at("18:00"))),
        PresenceSession(ADA, Interval(at("13:30"), at("23:30"))),
        PresenceSession(BARBARA, Interval(at("20:00"), at("00:00", day=5))),
    ]


def test_a_shorter_timeout_restarts_at_each_granted_tap() -> None:
    sessions = presence_sessions(log().taps, ROME, timeout=hours(4))

    assert sessions == [
        PresenceSession(ADA, Interval(at("09:00"), at("12:30"))),
        # Timed out 4 h after the 11:00 tap; the 18:00 tap-out finds nothing open.
        PresenceSession(GRACE, Interval(at("10:00"), at("15:00"))),
        PresenceSession(ADA, Interval(at("13:30"), at("17:30"))),
        PresenceSession(BARBARA, Interval(at("20:00"), at("00:00", day=5))),
    ]


def test_a_tap_after_the_timeout_opens_a_new_session() -> None:
    taps = [Tap(ADA, at("07:00"), "in"), Tap(ADA, at("19:00"), "in"), Tap(ADA, at("19:30"), "in")]

    assert presence_sessions(taps, ROME) == [
        PresenceSession(ADA, Interval(at("07:00"), at("17:00"))),
        PresenceSession(ADA, Interval(at("19:00"), at("00:00", day=5))),
    ]


def test_a_session_ends_at_the_sites_midnight_not_utcs() -> None:
    # 23:30 UTC is 00:30 in Rome: the session opened at 22:00 UTC ended at Rome's midnight.
    taps = [Tap(ADA, datetime(2025, 3, 4, 22, 0, tzinfo=UTC), "in")]

    assert presence_sessions(taps, ROME) == [
        PresenceSession(ADA, Interval(at("23:00"), at("00:00", day=5)))
    ]
    assert presence_sessions(taps, UTC) == [
        PresenceSession(ADA, Interval(at("23:00"), at("00:00", day=5) + hours(1)))
    ]


def test_midnights_follow_daylight_saving_time() -> None:
    # Rome moves its clocks forward on 30 March 2025: that day lasts 23 hours.
    morning = datetime(2025, 3, 30, 9, 0, tzinfo=ROME)

    assert next_midnight(morning, ROME) == datetime(2025, 3, 30, 22, 0, tzinfo=UTC)
    assert day_start(morning, ROME) == datetime(2025, 3, 29, 23, 0, tzinfo=UTC)


def test_hours_present_over_the_whole_day() -> None:
    report = presence_report(log(), DAY)

    assert report.members == (
        MemberUsage(ADA, "Ada Lovelace", hours(13.5), 2),
        MemberUsage(GRACE, "Grace Hopper", hours(8), 1),
        MemberUsage(BARBARA, "Barbara", hours(4), 1),
    )
    assert (report.present, report.sessions) == (hours(25.5), 4)
    assert report.peak == Peak(2, at("10:00"))


def test_hours_present_are_clipped_to_the_period() -> None:
    report = presence_report(log(), MIDDAY)

    assert report.members == (
        MemberUsage(ADA, "Ada Lovelace", hours(1), 2),  # 12:00-12:30 and 13:30-14:00
        MemberUsage(GRACE, "Grace Hopper", hours(2), 1),
    )
    assert (report.present, report.sessions) == (hours(3), 3)
    assert report.peak == Peak(2, at("12:00"))


def test_a_member_deleted_since_is_reported_without_a_name() -> None:
    taps = [Tap(99, at("09:00"), "in"), Tap(99, at("10:00"), "out")]
    unnamed = UsageLog(ROME, taps, [], NAMES, [], {})

    assert presence_report(unnamed, DAY).members == (MemberUsage(99, None, hours(1), 1),)


def test_desk_intervals_ignore_repeats_and_follow_the_events_own_time() -> None:
    intervals = desk_intervals(log().desk_changes, DAY)

    assert intervals == {
        "desk-1": [Interval(at("09:05"), at("12:25")), Interval(at("13:35"), at("17:05"))],
        "desk-2": [Interval(at("10:00"), at("18:00"))],
        "room-1": [Interval(at("16:00"), at("00:00", day=5))],
        "desk-x": [Interval(at("10:00"), at("00:00", day=5))],
    }


def test_desk_intervals_are_clipped_to_the_period() -> None:
    intervals = desk_intervals(log().desk_changes, MIDDAY)

    assert intervals == {
        "desk-1": [Interval(at("12:00"), at("12:25")), Interval(at("13:35"), at("14:00"))],
        "desk-2": [Interval(at("12:00"), at("14:00"))],
        "room-1": [],
        "desk-x": [Interval(at("12:00"), at("14:00"))],
    }


def test_desk_and_area_usage_over_the_whole_day() -> None:
    report = occupancy_report(log(), DAY)

    assert rounded(report.desks) == (
        DeskUsage("desk-1", "Desk 1", "open-space", hours(6) + timedelta(minutes=50), 28.4722),
        DeskUsage("desk-2", "Desk 2", "open-space", hours(8), 33.3333),
        DeskUsage("room-1", "Room 1", "rooms", hours(8), 33.3333),
    )
    assert rounded(report.areas) == (
        AreaUsage(
            "open-space",
            "Open space",
            2,
            hours(14) + timedelta(minutes=50),
            30.9028,
            Peak(2, at("10:00")),
        ),
        AreaUsage("rooms", "Meeting rooms", 1, hours(8), 33.3333, Peak(1, at("16:00"))),
    )
    assert (report.occupied, round(report.utilisation_pct, 4)) == (
        hours(22) + timedelta(minutes=50),
        31.713,
    )
    assert report.peak == Peak(3, at("16:00"))


def test_desk_and_area_usage_are_clipped_to_the_period() -> None:
    report = occupancy_report(log(), MIDDAY)

    assert rounded(report.desks) == (
        DeskUsage("desk-1", "Desk 1", "open-space", timedelta(minutes=50), 41.6667),
        DeskUsage("desk-2", "Desk 2", "open-space", hours(2), 100.0),
        DeskUsage("room-1", "Room 1", "rooms", timedelta(0), 0.0),
    )
    assert rounded(report.areas) == (
        AreaUsage(
            "open-space",
            "Open space",
            2,
            hours(2) + timedelta(minutes=50),
            70.8333,
            Peak(2, at("12:00")),
        ),
        AreaUsage("rooms", "Meeting rooms", 1, timedelta(0), 0.0, Peak(0, None)),
    )
    assert (report.occupied, round(report.utilisation_pct, 4)) == (
        hours(2) + timedelta(minutes=50),
        47.2222,
    )
    assert report.peak == Peak(2, at("12:00"))


@pytest.mark.parametrize(
    ("intervals", "expected"),
    [
        ([], Peak(0, None)),
        ([("09:00", "10:00"), ("10:00", "11:00")], Peak(1, at("09:00"))),  # half-open
        ([("09:00", "12:00"), ("10:00", "11:00"), ("10:30", "13:00")], Peak(3, at("10:30"))),
        ([("09:00", "09:00"), ("09:00", "10:00")], Peak(1, at("09:00"))),  # empty ones count 0
    ],
    ids=["nothing", "back-to-back", "nested", "empty-interval"],
)
def test_peak_is_the_most_intervals_at_once_first_reached(
    intervals: list[tuple[str, str]], expected: Peak
) -> None:
    assert peak(Interval(at(start), at(end)) for start, end in intervals) == expected


@pytest.mark.parametrize(
    ("since", "until", "field", "message"),
    [
        (at("10:00"), at("10:00"), "until", "until must be after since"),
        (at("11:00"), at("10:00"), "until", "until must be after since"),
        (at("00:00"), at("00:00") + MAX_PERIOD + timedelta(seconds=1), "until", "at most 400"),
        (datetime(2025, 3, 4), at("10:00"), "since", "naive datetime"),
        (datetime(1969, 12, 31, tzinfo=UTC), at("10:00"), "since", "must lie between"),
        (at("10:00"), datetime(9999, 1, 1, tzinfo=UTC), "until", "must lie between"),
    ],
    ids=["empty", "backwards", "too-long", "naive", "too-early", "too-late"],
)
def test_a_period_must_be_forwards_aware_and_bounded(
    since: datetime, until: datetime, field: str, message: str
) -> None:
    with pytest.raises(ReportError, match=message) as raised:
        Period(since, until)

    assert raised.value.field == field


def test_a_period_defaults_to_the_30_days_up_to_now() -> None:
    now = at("10:00")

    assert period_of(None, None, now) == Period(now - timedelta(days=30), now)
    assert period_of(at("09:00"), None, now) == Period(at("09:00"), now)
    assert period_of(None, at("08:00"), now) == Period(
        at("08:00") - timedelta(days=30), at("08:00")
    )
    with pytest.raises(ReportError, match="calendar"):
        period_of(None, datetime(1, 1, 2, tzinfo=UTC), now)
    assert Period(at("00:00"), at("00:00") + MAX_PERIOD).duration == MAX_PERIOD
