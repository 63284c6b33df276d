"""Admission of device messages: what a message must pass before the gateway acts on it.

A device is trusted for nothing it cannot show: its times are checked against the gateway's
clock, its share of the gateway is bounded, and what it is refused is said in the log at a
bounded rate, so that a device sending a million bad messages writes a few lines, not a million.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from varco.protocol import DeskEvent, DoorEvent, Payload, Status, Tap

# A device's clock may run ahead of the gateway's by this much (a Pi without a real-time
# clock before NTP has synchronised, a time zone set wrong); further ahead is a lie or a fault,
# and would pin a desk or a door in a state, or keep a tap past the access log's retention.
MAX_AHEAD = timedelta(days=1)
# A door that lost the gateway decides offline and keeps every event in its outbox until it
# is back: a site shut over a four-week holiday returns with taps that old. Older events are
# refused: reports and billing are monthly, and an event from before that is a clock fault (a
# Pi that booted at 1970 before NTP) far more often than a door away for so long.
MAX_EVENT_AGE = timedelta(days=30)
# A status is retained and its last will is stamped when the session began, which may be
# months ago; a year is enough for any session and keeps InfluxDB's points in range.
MAX_STATUS_AGE = timedelta(days=366)

# Messages of one device handled and not yet acknowledged (committed); beyond, its messages
# are refused (acknowledged, counted) until its commits catch up. A real edge forwards one event
# at a time, each as soon as the broker has the one before (edge_agent/link.py): draining a
# backlog after an outage at ~2,000 events/s while a commit takes 50 ms keeps ~100 pending.
# One writer batch leaves room for a slow database; the broker's in-flight window for the
# gateway (max_inflight_messages, deploy/mosquitto) must be well above it, or one device's
# uncommitted messages fill it and every other door waits behind them.
MAX_PENDING_PER_DEVICE = 500
# Online taps per device (``VARCO_DEVICE_TAP_RATE``): a reader is tapped once a second at
# most, however busy its door, and a controller drives a few doors; as many at once.
TAP_RATE_PER_SECOND = 50.0
# Refusals logged per device and reason in each window; the rest are counted, then summed up.
LOG_LINES_PER_WINDOW = 5
LOG_WINDOW_SECONDS = 10.0


def time_refusal(payload: Payload, now: datetime) -> str | None:
    """Return why a payload's times are refused (``time_*``), or ``None`` if they are fine."""
    if isinstance(payload, Tap | DoorEvent | DeskEvent):
        return _check(payload.at, now, MAX_EVENT_AGE)
    if isinstance(payload, Status):
        for at, oldest in (
            (payload.at, MAX_STATUS_AGE),
            (payload.started_at, None),  # a device may run for years
            (payload.allowlist_issued_at, MAX_STATUS_AGE),
        ):
            refusal = _check(at, now, oldest) if at is not None else None
            if refusal is not None:
                return refusal
    return None


def _check(at: datetime, now: datetime, oldest: timedelta | None) -> str | None:
    try:
        utc = at.astimezone(UTC)
    except OverflowError:
        return "time_outside_calendar"  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
    if utc > now + MAX_AHEAD:
        return "time_ahead"
    if oldest is not None and utc < now - oldest:
        return "time_too_old"
    return None


def no_later_than(at: datetime, now: datetime) -> datetime:
    """Return ``at``, or ``now`` if it is later: no device may order itself after the future."""
    return now if at > now else at


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens per key at most, refilled at ``rate`` a second; each take spends one."""

    rate: float = TAP_RATE_PER_SECOND
    clock: Callable[[], float] = time.monotonic
    _tokens: dict[str, float] = field(default_factory=dict)
    _at: dict[str, float] = field(default_factory=dict)

    def take(self, key: str) -> bool:
        """Spend a token of ``key``; return ``False`` if it has none left."""
        now = self.clock()
        refill = (now - self._at.get(key, now)) * self.rate
        tokens = min(self.rate, self._tokens.get(key, self.rate) + refill)
        self._at[key] = now
        if tokens < 1.0:
            self._tokens[key] = tokens
            return False
        self._tokens[key] = tokens - 1.0
        return True


@dataclass(slots=True)
class _Window:
    started: float
    logged: int = 0
    quiet: int = 0


class RefusalLog:
    """Logs refusals per device and reason, a few lines per window, then how many were not."""

    def __init__(self, logger: logging.Logger, clock: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._clock = clock
        self._windows: dict[tuple[str, str], _Window] = {}

    def refused(self, device: str, reason: str, what: object, detail: object) -> None:
        """Log that a message of ``device`` was refused for ``reason``, unless too many were."""
        key = (device, reason)
        now = self._clock()
        window = self._windows.get(key)
        if window is None or now - window.started >= LOG_WINDOW_SECONDS:
            if window is not None and window.quiet:
                self._log.warning(
                    "%d more messages from %s refused (%s) in %gs, not logged one by one",
                    window.quiet,
                    device,
                    reason,
                    LOG_WINDOW_SECONDS,
                )
            if len(self._windows) > 10_000:  # made-up device names must not grow this forever
                self._windows.clear()
            window = self._windows[key] = _Window(now)
        if window.logged < LOG_LINES_PER_WINDOW:
            window.logged += 1
            self._log.warning("refused message on %s: %s: %s", what, reason, detail)
        else:
            window.quiet += 1
