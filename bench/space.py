"""A synthetic coworking space of any size, the same for every benchmark that needs one.

Five zones, five plans (one 24/7, three with opening hours, one lobby-only), doors spread over
door controllers so that each controller has doors in every zone, one badge per member, a few
members suspended and a few badges revoked. ``rows`` gives it as SQL rows for a real gateway's
store; ``policy`` gives it as the gateway's in-memory ``Policy``, built through the public
``Policy.build`` and the rule dataclasses, in this one function.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table

from gateway.access import (
    BadgeRule,
    ClosureRule,
    DeviceRule,
    DoorRule,
    MemberRule,
    PassRule,
    PlanRule,
    Policy,
    SiteRule,
    ZoneRule,
)
from gateway.store import models
from varco.protocol import Interval, Window, pass_code_hash

SITE = "bench-site"
TIMEZONE = "Europe/Rome"
ZONES = ("lobby", "open-space", "meeting-rooms", "studio", "night-lab")
LOBBY = "lobby"
WEEKDAYS = (0, 1, 2, 3, 4)
MONDAY_TO_SATURDAY = (0, 1, 2, 3, 4, 5)
EVERY_DAY = (0, 1, 2, 3, 4, 5, 6)
ROUND_THE_CLOCK = "round-the-clock"
LOBBY_ONLY = "lobby-only"
# One member in SUSPENDED_EVERY is suspended, one badge in REVOKED_EVERY revoked (when lapsed).
SUSPENDED_EVERY = 97
REVOKED_EVERY = 89
UNLOCK_SECONDS = 3.0
# A closure at Christmas, a year from now at the latest: 24/7 plans ignore it, others do not.
CLOSURE_DAYS = 2


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """A weekly window in minutes of the site's local time; ``zone`` None: the plan's default."""

    zone: str | None
    days: tuple[int, ...]
    start: int
    end: int

    def window(self) -> Window:
        """Return the protocol's ``Window``."""
        return Window(days=list(self.days), start=_clock(self.start), end=_clock(self.end))

    def days_mask(self) -> int:
        """Return the store's day bits (bit 0 = Monday)."""
        return sum(1 << day for day in self.days)


@dataclass(frozen=True, slots=True)
class PlanSpec:
    """A plan: the zones it opens, its windows (none: any hour), its share of members in %."""

    id: str
    zones: tuple[str, ...]
    windows: tuple[WindowSpec, ...]
    share: int
    open_on_closures: bool = False

    @property
    def has_hours(self) -> bool:
        return bool(self.windows)


PLANS = (
    PlanSpec(ROUND_THE_CLOCK, ZONES, (), share=25, open_on_closures=True),
    PlanSpec(
        "office-hours",
        (LOBBY, "open-space", "meeting-rooms"),
        (WindowSpec(None, WEEKDAYS, 8 * 60, 19 * 60),),
        share=40,
    ),
    # Past midnight: 18:00 to 02:00 the next day.
    PlanSpec("evenings", (LOBBY, "studio"), (WindowSpec(None, EVERY_DAY, 18 * 60, 2 * 60),), 15),
    PlanSpec(
        "meetings",
        (LOBBY, "meeting-rooms"),
        (
            WindowSpec(LOBBY, MONDAY_TO_SATURDAY, 7 * 60, 21 * 60),
            WindowSpec("meeting-rooms", WEEKDAYS, 9 * 60, 18 * 60),
        ),
        share=15,
    ),
    PlanSpec(LOBBY_ONLY, (LOBBY,), (), share=5),
)
_PLAN_CYCLE = tuple(plan.id for plan in PLANS for _ in range(plan.share))
PLANS_BY_ID = {plan.id: plan for plan in PLANS}


@dataclass(frozen=True, slots=True)
class Space:
    """How big the space is; ``lapsed`` adds suspended members and revoked badges."""

    members: int
    doors: int
    controllers: int
    lapsed: bool = True

    def plan_of(self, n: int) -> str:
        """Return the plan of member number ``n`` (0-based)."""
        return _PLAN_CYCLE[n % len(_PLAN_CYCLE)]

    def suspended(self, n: int) -> bool:
        return self.lapsed and n % SUSPENDED_EVERY == SUSPENDED_EVERY - 1

    def revoked(self, n: int) -> bool:
        return self.lapsed and n % REVOKED_EVERY == REVOKED_EVERY - 1

    def door(self, i: int) -> tuple[str, str, str]:
        """Return door number ``i``'s id, zone and controller: each controller gets every zone."""
        controller = i % self.controllers
        zone = ZONES[(i // self.controllers) % len(ZONES)]
        return door_id(i), zone, device_id(controller)

    def doors_of(self) -> dict[str, list[tuple[str, str]]]:
        """Return each controller's doors with their zones."""
        doors: dict[str, list[tuple[str, str]]] = {
            device_id(c): [] for c in range(self.controllers)
        }
        for i in range(self.doors):
            door, zone, device = self.door(i)
            doors[device].append((door, zone))
        return doors


def member_id(n: int) -> int:
    """Member number ``n``'s id (and its badge's): ids start at 1."""
    return n + 1


def badge_uid(n: int) -> str:
    return f"{0x10000000 + n:08X}"


def device_id(c: int) -> str:
    return f"door-ctl-{c:03d}"


def door_id(i: int) -> str:
    return f"door-{i:04d}"


def pass_code(n: int) -> str:
    return f"guest-{n:05d}"


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def closure(now: datetime) -> Interval:
    """Return the next Christmas closure after ``now``."""
    christmas = datetime(now.year, 12, 25, tzinfo=ZoneInfo(TIMEZONE))
    if christmas + timedelta(days=CLOSURE_DAYS) < now:
        christmas = christmas.replace(year=now.year + 1)
    return Interval(starts_at=christmas, ends_at=christmas + timedelta(days=CLOSURE_DAYS))


def rows(
    space: Space, keys: dict[str, str], now: datetime
) -> Iterator[tuple[type[models.Base] | Table, list[dict[str, Any]]]]:
    """Yield, table by table in insertion order, the rows of ``space`` for the SQL store.

    ``keys`` holds each controller's ``allowlist_key`` (hex). Ids are given, so that badges
    reference members without reading them back: the rows go in with bulk INSERTs.
    """
    yield models.Site, [{"id": SITE, "name": "Bench", "timezone": TIMEZONE}]
    yield models.Zone, [{"id": zone, "name": zone.replace("-", " ").title()} for zone in ZONES]
    yield (
        models.Plan,
        [
            {"id": plan.id, "name": plan.id, "open_on_closures": plan.open_on_closures}
            for plan in PLANS
        ],
    )
    yield (
        models.plan_zones,
        [{"plan_id": plan.id, "zone_id": zone} for plan in PLANS for zone in plan.zones],
    )
    yield (
        models.AccessWindow,
        [
            {
                "plan_id": plan.id,
                "zone_id": window.zone,
                "days": window.days_mask(),
                "start_minute": window.start,
                "end_minute": window.end,
            }
            for plan in PLANS
            for window in plan.windows
        ],
    )
    interval = closure(now)
    yield (
        models.Closure,
        [
            {
                "name": "Christmas",
                "site_id": SITE,
                "starts_at": interval.starts_at,
                "ends_at": interval.ends_at,
            }
        ],
    )
    yield (
        models.Device,
        [
            {
                "id": device,
                "site": SITE,
                "kind": models.DeviceKind.DOOR_CONTROLLER,
                "name": device,
                "allowlist_key": keys[device],
                "created_at": now,
            }
            for device in (device_id(c) for c in range(space.controllers))
        ],
    )
    doors = []
    for i in range(space.doors):
        door, zone, device = space.door(i)
        doors.append(
            {
                "id": door,
                "name": door,
                "zone_id": zone,
                "device_id": device,
                "unlock_seconds": UNLOCK_SECONDS,
                "direction": "in",
            }
        )
    yield models.Door, doors
    yield (
        models.Member,
        [
            {
                "id": member_id(n),
                "name": f"Member {n}",
                "plan_id": space.plan_of(n),
                "status": (
                    models.MemberStatus.SUSPENDED
                    if space.suspended(n)
                    else models.MemberStatus.ACTIVE
                ),
                "skills": [],
                "board_opt_in": False,
                "created_at": now,
            }
            for n in range(space.members)
        ],
    )
    yield (
        models.Badge,
        [
            {
                "id": member_id(n),
                "uid": badge_uid(n),
                "member_id": member_id(n),
                "active": not space.revoked(n),
                "created_at": now,
            }
            for n in range(space.members)
        ],
    )


def policy(
    space: Space, keys: dict[str, bytes], now: datetime, *, passes: int = 0, version: int = 1
) -> Policy:
    """Build ``space`` as the gateway's in-memory policy, with ``passes`` guest passes.

    The one place a benchmark builds a ``Policy`` by hand: adapt it here if the rules change.
    Guest pass ``n`` opens every tenth door, from an hour ago for a day.
    """
    plans = [
        PlanRule(
            id=plan.id,
            zones=frozenset(plan.zones),
            windows=_windows_by_zone(plan),
            open_on_closures=plan.open_on_closures,
        )
        for plan in PLANS
    ]
    members = [
        MemberRule(
            id=member_id(n),
            name=f"Member {n}",
            active=not space.suspended(n),
            plan=space.plan_of(n),
        )
        for n in range(space.members)
    ]
    badges = [
        BadgeRule(uid=badge_uid(n), member_id=member_id(n), active=not space.revoked(n))
        for n in range(space.members)
    ]
    doors = []
    for i in range(space.doors):
        door, zone, device = space.door(i)
        doors.append(DoorRule(id=door, zone=zone, device=device, unlock_seconds=UNLOCK_SECONDS))
    every_tenth = frozenset(door.id for door in doors[::10])
    return Policy.build(
        members,
        badges,
        doors,
        [DeviceRule(id=device, site=SITE, allowlist_key=key) for device, key in keys.items()],
        plans=plans,
        zones=[ZoneRule(id=zone) for zone in ZONES],
        sites=[SiteRule(id=SITE, timezone=ZoneInfo(TIMEZONE))],
        passes=[
            PassRule(
                code_hash=pass_code_hash(pass_code(n)),
                guest_name=f"Guest {n}",
                doors=every_tenth,
                valid_from=now - timedelta(hours=1),
                valid_until=now + timedelta(days=1),
            )
            for n in range(passes)
        ],
        closures=[ClosureRule(site=SITE, interval=closure(now))],
        version=version,
    )


def _windows_by_zone(plan: PlanSpec) -> dict[str | None, tuple[Window, ...]]:
    windows: dict[str | None, list[Window]] = {}
    for spec in plan.windows:
        windows.setdefault(spec.zone, []).append(spec.window())
    return {zone: tuple(ws) for zone, ws in windows.items()}


def weekday_morning(zone: str = TIMEZONE) -> datetime:
    """Return a fixed Wednesday, 10:30 site time (in UTC): office hours open, evenings not."""
    return datetime(2026, 11, 25, 10, 30, tzinfo=ZoneInfo(zone)).astimezone(UTC)
