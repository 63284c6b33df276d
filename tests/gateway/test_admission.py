"""Admission of device messages: which times are believed, the tap budget, bounded logging."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.admission import (
    LOG_LINES_PER_WINDOW,
    LOG_WINDOW_SECONDS,
    RefusalLog,
    TokenBucket,
    time_refusal,
)
from varco.protocol import Credential, DeskEvent, DeviceState, Payload, Status, Tap

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
PLUS_14 = timezone(timedelta(hours=14))
MINUS_14 = timezone(timedelta(hours=-14))


def tap(at: datetime) -> Tap:
    return Tap(
        event_id="tap-00000001", door="front-door", credential=Credential(value="04A1"), at=at
    )


def status(at: datetime, started_at: datetime | None = None) -> Status:
    return Status(state=DeviceState.ONLINE, software="edge", started_at=started_at or at, at=at)


@pytest.mark.parametrize(
    ("payload", "refusal"),
    [
        (tap(NOW), None),
        (tap(NOW + timedelta(hours=23)), None),  # a clock a little ahead
        (tap(NOW - timedelta(days=29)), None),  # a door back from a long holiday
        (tap(datetime(1, 1, 1, tzinfo=PLUS_14)), "time_outside_calendar"),
        (tap(datetime(9999, 12, 31, 23, 59, 59, tzinfo=MINUS_14)), "time_outside_calendar"),
        (tap(NOW + timedelta(days=1, seconds=1)), "time_ahead"),
        (tap(datetime(2999, 1, 1, tzinfo=UTC)), "time_ahead"),
        (tap(NOW - timedelta(days=31)), "time_too_old"),
        (tap(datetime(1970, 1, 1, tzinfo=UTC)), "time_too_old"),  # a Pi before NTP
        (DeskEvent(event_id="desk-0000001", desk="d", occupied=True, at=NOW), None),
        (status(NOW - timedelta(days=200)), None),  # a last will, stamped long ago
        (status(NOW, started_at=NOW - timedelta(days=900)), None),  # up for years
        (status(NOW - timedelta(days=400)), "time_too_old"),
        (status(NOW, started_at=NOW + timedelta(days=3)), "time_ahead"),
        (status(NOW, started_at=datetime(1, 1, 1, tzinfo=PLUS_14)), "time_outside_calendar"),
    ],
)
def test_times_are_believed_within_bounds_of_the_gateways_clock(
    payload: Payload, refusal: str | None
) -> None:
    assert time_refusal(payload, NOW) == refusal


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_device_gets_its_burst_of_taps_then_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10.0, clock=clock)

    burst = [bucket.take("door-ctl-1") for _ in range(12)]
    other = bucket.take("door-ctl-2")  # each device has its own budget
    clock.now = 0.5
    refilled = [bucket.take("door-ctl-1") for _ in range(6)]

    assert burst == [True] * 10 + [False] * 2
    assert other
    assert refilled == [True] * 5 + [False]


def test_refusals_are_logged_a_few_lines_per_window_then_summed_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    refusals = RefusalLog(logging.getLogger("test.admission"), clock=clock)

    with caplog.at_level(logging.WARNING, logger="test.admission"):
        for _ in range(1000):
            refusals.refused("door-ctl-9", "tap_rate", "varco/v1/s/door-ctl-9/tap", "too fast")
        refusals.refused("door-ctl-1", "tap_rate", "varco/v1/s/door-ctl-1/tap", "too fast")
        clock.now = LOG_WINDOW_SECONDS
        refusals.refused("door-ctl-9", "tap_rate", "varco/v1/s/door-ctl-9/tap", "too fast")

    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == LOG_LINES_PER_WINDOW + 1 + 2
    assert f"{1000 - LOG_LINES_PER_WINDOW} more messages from door-ctl-9 refused" in lines[-2]
