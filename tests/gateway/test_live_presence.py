"""Who is in today, when the space has sites in different time zones."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.access import DeviceRule, DoorRule, Policy, SiteRule
from gateway.live import LiveHub
from gateway.occupancy import Occupancy
from gateway.store import Store
from varco import protocol

ROME = ZoneInfo("Europe/Rome")
AUCKLAND = ZoneInfo("Pacific/Auckland")
POLICY = Policy.build(
    [],
    [],
    [
        DoorRule("rome-door", "lobby", "rome-ctl", 3.0),
        DoorRule("akl-door", "lobby", "akl-ctl", 3.0),
    ],
    [
        DeviceRule("rome-ctl", "rome", b"k" * 32),
        DeviceRule("akl-ctl", "auckland", b"k" * 32),
    ],
    sites=[SiteRule("rome", ROME), SiteRule("auckland", AUCKLAND)],
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path / 'varco.db'}") as store:
        store.create_schema()
        yield store


def present(store: Store, *taps: tuple[int, str, datetime]) -> int:
    """How many the live page counts as in today, after ``taps`` (member, door, time)."""
    hub = LiveHub(store, Occupancy(), lambda: POLICY)
    for member_id, door, at in taps:
        hub.on_access({"granted": True, "member_id": member_id, "door_id": door, "tapped_at": at})
    with store.session() as session:
        count: int = hub.state(session)["present"]
    return count


def local(zone: ZoneInfo, days: int, at: time) -> datetime:
    """``at`` on the local day ``days`` from today in ``zone``."""
    today = protocol.utcnow().astimezone(zone).date() + timedelta(days=days)
    return datetime.combine(today, at, tzinfo=zone)


def test_just_after_midnight_at_a_site_is_today_there_though_yesterday_in_utc(
    store: Store,
) -> None:
    assert present(store, (1, "rome-door", local(ROME, 0, time(0, 30)))) == 1


def test_late_last_night_at_a_site_is_yesterday_there_whatever_the_day_in_utc(
    store: Store,
) -> None:
    assert present(store, (2, "akl-door", local(AUCKLAND, -1, time(23, 30)))) == 0


def test_each_member_counts_by_the_site_they_came_in_at(store: Store) -> None:
    taps = [
        (1, "rome-door", local(ROME, 0, time(0, 30))),
        (2, "akl-door", local(AUCKLAND, -1, time(23, 30))),
        (3, "akl-door", local(AUCKLAND, 0, time(8, 0))),
    ]

    assert present(store, *taps) == 2
