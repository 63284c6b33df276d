"""When a schedule opens a door: weekly windows on the wall clock, validity, closures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from varco.protocol import Interval, Refusal, Schedule, Window
from varco.protocol.schedule import minutes

ROME = ZoneInfo("Europe/Rome")
NEW_YORK = ZoneInfo("America/New_York")
MONDAY = datetime(2026, 3, 2)  # a week with no daylight-saving change anywhere near
DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}

OFFICE_HOURS = Window(days=[0, 1, 2, 3, 4], start="08:00", end="18:00")
FRIDAY_NIGHT = Window(days=[4], start="22:00", end="02:00")
SUNDAY_NIGHT = Window(days=[6], start="23:00", end="01:00")
FRIDAY_TILL_MIDNIGHT = Window(days=[4], start="22:00", end="00:00")
LUNCH = Window(days=[2], start="12:00", end="14:00")


def wall(day: str, clock: str, second: int = 0) -> datetime:
    """Return a wall-clock time in the week of Monday 2 March 2026: ``wall("fri", "23:30")``."""
    hour, minute = (int(part) for part in clock.split(":"))
    return MONDAY + timedelta(days=DAYS[day], hours=hour, minutes=minute, seconds=second)


def rome(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ROME)


# -- Window.contains: the wall clock against one window ------------------------------------------

CONTAINS = [
    # Office hours: start included, end excluded, minute by minute.
    pytest.param(OFFICE_HOURS, wall("mon", "07:59"), False, id="office/mon-07:59-out"),
    pytest.param(OFFICE_HOURS, wall("mon", "07:59", 59), False, id="office/mon-07:59:59-out"),
    pytest.param(OFFICE_HOURS, wall("mon", "08:00"), True, id="office/mon-08:00-in"),
    pytest.param(OFFICE_HOURS, wall("fri", "12:00"), True, id="office/fri-12:00-in"),
    pytest.param(OFFICE_HOURS, wall("mon", "17:59", 59), True, id="office/mon-17:59:59-in"),
    pytest.param(OFFICE_HOURS, wall("mon", "18:00"), False, id="office/mon-18:00-out"),
    pytest.param(OFFICE_HOURS, wall("sat", "10:00"), False, id="office/sat-10:00-out"),
    pytest.param(OFFICE_HOURS, wall("sun", "10:00"), False, id="office/sun-10:00-out"),
    pytest.param(LUNCH, wall("wed", "13:00"), True, id="lunch/wed-13:00-in"),
    pytest.param(LUNCH, wall("tue", "13:00"), False, id="lunch/tue-13:00-out"),
    # Friday 22:00-02:00 runs into Saturday's small hours.
    pytest.param(FRIDAY_NIGHT, wall("fri", "21:59"), False, id="fri-night/fri-21:59-out"),
    pytest.param(FRIDAY_NIGHT, wall("fri", "22:00"), True, id="fri-night/fri-22:00-in"),
    pytest.param(FRIDAY_NIGHT, wall("fri", "23:30"), True, id="fri-night/fri-23:30-in"),
    pytest.param(FRIDAY_NIGHT, wall("sat", "00:00"), True, id="fri-night/sat-00:00-in"),
    pytest.param(FRIDAY_NIGHT, wall("sat", "01:59"), True, id="fri-night/sat-01:59-in"),
    pytest.param(FRIDAY_NIGHT, wall("sat", "02:00"), False, id="fri-night/sat-02:00-out"),
    pytest.param(FRIDAY_NIGHT, wall("thu", "23:30"), False, id="fri-night/thu-23:30-out"),
    pytest.param(FRIDAY_NIGHT, wall("sun", "01:00"), False, id="fri-night/sun-01:00-out"),
    pytest.param(FRIDAY_NIGHT, wall("sat", "23:30"), False, id="fri-night/sat-23:30-out"),
    pytest.param(FRIDAY_NIGHT, wall("fri", "01:00"), False, id="fri-night/fri-01:00-out"),
    pytest.param(FRIDAY_NIGHT, wall("fri", "12:00"), False, id="fri-night/fri-noon-out"),
    # Sunday night runs into Monday: the week wraps around.
    pytest.param(SUNDAY_NIGHT, wall("sun", "23:30"), True, id="sun-night/sun-23:30-in"),
    pytest.param(SUNDAY_NIGHT, wall("mon", "00:30"), True, id="sun-night/mon-00:30-in"),
    pytest.param(SUNDAY_NIGHT, wall("mon", "01:00"), False, id="sun-night/mon-01:00-out"),
    pytest.param(SUNDAY_NIGHT, wall("sat", "23:30"), False, id="sun-night/sat-23:30-out"),
    # An end of 00:00 means midnight at the end of the day.
    pytest.param(FRIDAY_TILL_MIDNIGHT, wall("fri", "23:59"), True, id="till-midnight/fri-23:59-in"),
    pytest.param(
        FRIDAY_TILL_MIDNIGHT, wall("sat", "00:00"), False, id="till-midnight/sat-00:00-out"
    ),
]


@pytest.mark.parametrize(("window", "local", "expected"), CONTAINS)
def test_window_contains(window: Window, local: datetime, expected: bool) -> None:
    assert window.contains(local) is expected


def test_window_reads_the_wall_clock_of_an_aware_time() -> None:
    # 10:00 in Rome is 04:00 in New York: the window reads the clock it is given, untranslated.
    assert OFFICE_HOURS.contains(rome(2026, 3, 2, 10))
    assert not OFFICE_HOURS.contains(rome(2026, 3, 2, 10).astimezone(NEW_YORK))


# -- Window validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"days": [], "start": "08:00", "end": "18:00"}, id="no-days"),
        pytest.param({"days": [7], "start": "08:00", "end": "18:00"}, id="day-7"),
        pytest.param({"days": [-1], "start": "08:00", "end": "18:00"}, id="day-minus-1"),
        pytest.param(
            {"days": [0, 1, 2, 3, 4, 5, 6, 0], "start": "08:00", "end": "18:00"}, id="8-days"
        ),
        pytest.param({"days": [0], "start": "24:00", "end": "18:00"}, id="start-24:00"),
        pytest.param({"days": [0], "start": "8:00", "end": "18:00"}, id="start-one-digit-hour"),
        pytest.param({"days": [0], "start": "08:60", "end": "18:00"}, id="start-minute-60"),
        pytest.param({"days": [0], "start": "08:00:00", "end": "18:00"}, id="start-with-seconds"),
        pytest.param({"days": [0], "start": "08:00\n", "end": "18:00"}, id="start-with-newline"),
        pytest.param({"days": [0], "start": "08:00", "end": "08:00"}, id="end-equals-start"),
        pytest.param({"days": [0], "start": "08:00"}, id="no-end"),
        pytest.param(
            {"days": [0], "start": "08:00", "end": "18:00", "zone": "lobby"}, id="unknown-field"
        ),
    ],
)
def test_window_refuses(fields: dict[str, Any]) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(fields, Window)


def test_window_days_are_kept_once_in_order() -> None:
    assert Window(days=[4, 0, 4], start="22:00", end="02:00").days == [0, 4]


def test_window_is_frozen() -> None:
    with pytest.raises(AttributeError):
        OFFICE_HOURS.start = "07:00"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("clock", "expected"),
    [("00:00", 0), ("08:30", 510), ("12:00", 720), ("23:59", 1439)],
)
def test_minutes(clock: str, expected: int) -> None:
    assert minutes(clock) == expected


@pytest.mark.parametrize(
    "clock",
    [
        "24:00",
        "8:30",
        "08:60",
        "08:30:00",
        "",
        " 08:30",
        pytest.param("08:30\n", id="trailing-newline"),
    ],
)
def test_minutes_refuses(clock: str) -> None:
    with pytest.raises(ValueError, match="not a clock time"):
        minutes(clock)


# -- Schedule.check: validity, then closures, then windows --------------------------------------

# Valid through March 2026; office hours; shut by two closures, one at each end of the validity.
MEMBERSHIP = Schedule(
    windows=[OFFICE_HOURS], valid_from=rome(2026, 3, 2), valid_until=rome(2026, 3, 28)
)
CLOSURES = [
    Interval(starts_at=rome(2026, 3, 1), ends_at=rome(2026, 3, 3)),
    Interval(starts_at=rome(2026, 3, 27), ends_at=rome(2026, 3, 30)),
]
ANY_HOUR = Schedule()
VALIDITY = Schedule(valid_from=rome(2026, 3, 10, 9), valid_until=rome(2026, 3, 10, 18))
OPEN_ON_CLOSURES = Schedule(windows=[OFFICE_HOURS], closed_on_closures=False)
TICK = timedelta(microseconds=1)

CHECKS = [
    # Order: validity first, then closures, then hours; each row fails every later check too.
    pytest.param(
        MEMBERSHIP,
        rome(2026, 3, 1, 20),
        Refusal.NOT_YET_VALID,
        id="not-yet-valid-beats-closed-and-outside-hours",
    ),
    pytest.param(
        MEMBERSHIP,
        rome(2026, 3, 28, 20),
        Refusal.EXPIRED,
        id="expired-beats-closed-and-outside-hours",
    ),
    pytest.param(MEMBERSHIP, rome(2026, 3, 2, 20), Refusal.CLOSED, id="closed-beats-outside-hours"),
    pytest.param(MEMBERSHIP, rome(2026, 3, 2, 10), Refusal.CLOSED, id="closed-in-hours"),
    pytest.param(MEMBERSHIP, rome(2026, 3, 4, 20), Refusal.OUTSIDE_HOURS, id="outside-hours"),
    pytest.param(MEMBERSHIP, rome(2026, 3, 4, 10), None, id="opens"),
    # Validity: from included, until excluded.
    pytest.param(VALIDITY, rome(2026, 3, 10, 9) - TICK, Refusal.NOT_YET_VALID, id="before-from"),
    pytest.param(VALIDITY, rome(2026, 3, 10, 9), None, id="at-from-opens"),
    pytest.param(VALIDITY, rome(2026, 3, 10, 18) - TICK, None, id="just-before-until-opens"),
    pytest.param(VALIDITY, rome(2026, 3, 10, 18), Refusal.EXPIRED, id="at-until-expired"),
    # Closures: start included, end excluded.
    pytest.param(ANY_HOUR, rome(2026, 3, 1) - TICK, None, id="just-before-a-closure-opens"),
    pytest.param(ANY_HOUR, rome(2026, 3, 1), Refusal.CLOSED, id="closure-starts-closed"),
    pytest.param(ANY_HOUR, rome(2026, 3, 3) - TICK, Refusal.CLOSED, id="closure-ends-closed"),
    pytest.param(ANY_HOUR, rome(2026, 3, 3), None, id="after-a-closure-opens"),
    pytest.param(ANY_HOUR, rome(2026, 3, 28, 3), Refusal.CLOSED, id="second-closure-closed"),
    pytest.param(ANY_HOUR, rome(2026, 3, 8, 3), None, id="no-windows-open-any-hour"),
    # A plan open on closures still keeps its hours.
    pytest.param(OPEN_ON_CLOSURES, rome(2026, 3, 2, 10), None, id="open-on-closures-in-hours"),
    pytest.param(
        OPEN_ON_CLOSURES,
        rome(2026, 3, 1, 10),
        Refusal.OUTSIDE_HOURS,
        id="open-on-closures-keeps-its-hours",
    ),
]


@pytest.mark.parametrize(("schedule", "at", "expected"), CHECKS)
def test_check(schedule: Schedule, at: datetime, expected: Refusal | None) -> None:
    assert schedule.check(at, ROME, CLOSURES) == expected


def test_check_without_closures_never_says_closed() -> None:
    assert ANY_HOUR.check(rome(2026, 3, 2, 10), ROME, []) is None


@pytest.mark.parametrize(
    ("at", "zone", "expected"),
    [
        # 08:00Z: 09:00 in Rome, 03:00 in New York.
        pytest.param(datetime(2026, 3, 2, 8, tzinfo=UTC), ROME, None, id="08:00Z-rome-in"),
        pytest.param(
            datetime(2026, 3, 2, 8, tzinfo=UTC),
            NEW_YORK,
            Refusal.OUTSIDE_HOURS,
            id="08:00Z-new-york-out",
        ),
        pytest.param(datetime(2026, 3, 2, 8, tzinfo=UTC), UTC, None, id="08:00Z-utc-in"),
        # 22:00Z: 23:00 in Rome, 17:00 in New York.
        pytest.param(
            datetime(2026, 3, 2, 22, tzinfo=UTC),
            ROME,
            Refusal.OUTSIDE_HOURS,
            id="22:00Z-rome-out",
        ),
        pytest.param(datetime(2026, 3, 2, 22, tzinfo=UTC), NEW_YORK, None, id="22:00Z-new-york-in"),
    ],
)
def test_check_reads_windows_on_the_site_clock(
    at: datetime, zone: tzinfo, expected: Refusal | None
) -> None:
    assert Schedule(windows=[OFFICE_HOURS]).check(at, zone, []) == expected
