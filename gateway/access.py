"""The access decision: a pure function over an in-memory snapshot of the coworking model.

Nothing here touches a disk or a socket (DESIGN invariant 1): the snapshot is rebuilt from the
store when the model changes, and ``decide`` only looks things up in it. Time comes in as an
argument; the site's local time (and so daylight saving) is handled by ``varco.protocol``'s
schedules, which the doors use offline too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from types import MappingProxyType
from typing import Literal, TypeVar
from zoneinfo import ZoneInfo

from varco.protocol import (
    Credential,
    CredentialKind,
    Interval,
    Reason,
    Schedule,
    Window,
    refusal_reason,
)

K = TypeVar("K")
V = TypeVar("V")

UTC_ZONE = ZoneInfo("UTC")


def _frozen(items: Mapping[K, V] | None = None) -> Mapping[K, V]:
    return MappingProxyType(dict(items or {}))


@dataclass(frozen=True, slots=True)
class PlanRule:
    id: str
    zones: frozenset[str]
    # Windows per zone; the ``None`` key holds the plan's windows for zones without their own.
    windows: Mapping[str | None, tuple[Window, ...]] = field(default_factory=_frozen)
    open_on_closures: bool = False

    def windows_for(self, zone: str) -> tuple[Window, ...]:
        """Return the windows that open ``zone`` (none: any hour)."""
        return self.windows.get(zone) or self.windows.get(None) or ()


@dataclass(frozen=True, slots=True)
class MemberRule:
    id: int
    name: str
    active: bool
    plan: str
    valid_from: datetime | None = None
    valid_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class BadgeRule:
    uid: str
    member_id: int
    active: bool


@dataclass(frozen=True, slots=True)
class PassRule:
    code: str
    guest_name: str
    doors: frozenset[str]
    valid_from: datetime
    valid_until: datetime
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class ZoneRule:
    id: str
    anti_passback: bool = False
    locked_down: bool = False


@dataclass(frozen=True, slots=True)
class SiteRule:
    id: str
    timezone: tzinfo = UTC_ZONE
    locked_down: bool = False


@dataclass(frozen=True, slots=True)
class DeviceRule:
    id: str
    site: str
    allowlist_key: bytes


@dataclass(frozen=True, slots=True)
class DoorRule:
    id: str
    zone: str
    device: str | None
    unlock_seconds: float
    direction: Literal["in", "out"] = "in"
    locked_down: bool = False
    open_windows: tuple[Window, ...] = ()
    open_after_first_entry: bool = False


@dataclass(frozen=True, slots=True)
class ClosureRule:
    site: str | None  # None: every site
    interval: Interval


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything ``decide`` needs, indexed for lookups, never mutated once built."""

    members: Mapping[int, MemberRule] = field(default_factory=_frozen)
    badges: Mapping[str, BadgeRule] = field(default_factory=_frozen)
    doors: Mapping[str, DoorRule] = field(default_factory=_frozen)
    devices: Mapping[str, DeviceRule] = field(default_factory=_frozen)
    plans: Mapping[str, PlanRule] = field(default_factory=_frozen)
    zones: Mapping[str, ZoneRule] = field(default_factory=_frozen)
    sites: Mapping[str, SiteRule] = field(default_factory=_frozen)
    passes: Mapping[str, PassRule] = field(default_factory=_frozen)
    closures: tuple[ClosureRule, ...] = ()
    desk_areas: Mapping[str, str] = field(default_factory=_frozen)  # desk -> its zone
    # desk -> the device whose sensor reports it (None: not said yet, any device may)
    desk_devices: Mapping[str, str | None] = field(default_factory=_frozen)
    version: int = 0

    @classmethod
    def build(
        cls,
        members: list[MemberRule],
        badges: list[BadgeRule],
        doors: list[DoorRule],
        devices: list[DeviceRule] | None = None,
        *,
        plans: list[PlanRule] | None = None,
        zones: list[ZoneRule] | None = None,
        sites: list[SiteRule] | None = None,
        passes: list[PassRule] | None = None,
        closures: list[ClosureRule] | None = None,
        desk_areas: Mapping[str, str] | None = None,
        desk_devices: Mapping[str, str | None] | None = None,
        version: int = 0,
    ) -> Policy:
        """Index rule lists into a snapshot."""
        return cls(
            members=_frozen({m.id: m for m in members}),
            badges=_frozen({b.uid: b for b in badges}),
            doors=_frozen({d.id: d for d in doors}),
            devices=_frozen({d.id: d for d in devices or []}),
            plans=_frozen({p.id: p for p in plans or []}),
            zones=_frozen({z.id: z for z in zones or []}),
            sites=_frozen({s.id: s for s in sites or []}),
            passes=_frozen({p.code: p for p in passes or []}),
            closures=tuple(closures or ()),
            desk_areas=_frozen(desk_areas),
            desk_devices=_frozen(desk_devices),
            version=version,
        )

    def site_of(self, door: DoorRule) -> SiteRule:
        """Return the site a door is at (through its device); UTC if unknown."""
        device = self.devices.get(door.device) if door.device else None
        site = self.sites.get(device.site) if device else None
        return site or SiteRule(id=device.site if device else "", timezone=UTC_ZONE)

    def closures_at(self, site: str) -> list[Interval]:
        """Return the closures that apply at ``site``."""
        return [c.interval for c in self.closures if c.site in (None, site)]

    def is_locked_down(self, door: DoorRule) -> bool:
        """Tell whether the door, its zone or its site is locked down."""
        zone = self.zones.get(door.zone)
        return door.locked_down or bool(zone and zone.locked_down) or self.site_of(door).locked_down

    def member_schedule(self, member: MemberRule, zone: str) -> Schedule | None:
        """Return when ``member`` may enter ``zone``, or ``None`` if their plan never opens it."""
        plan = self.plans.get(member.plan)
        if plan is None or zone not in plan.zones:
            return None
        return Schedule(
            windows=list(plan.windows_for(zone)),
            valid_from=member.valid_from,
            valid_until=member.valid_until,
            closed_on_closures=not plan.open_on_closures,
        )

    def pass_schedule(self, guest_pass: PassRule, door: str) -> Schedule | None:
        """Return when a guest pass opens ``door``, or ``None`` if never."""
        if guest_pass.revoked or door not in guest_pass.doors:
            return None
        return Schedule(valid_from=guest_pass.valid_from, valid_until=guest_pass.valid_until)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What ``decide`` concluded, and for whom."""

    granted: bool
    reason: Reason
    unlock_seconds: float = 0.0
    member_id: int | None = None
    display_name: str | None = None


def decide(
    policy: Policy,
    *,
    device: str,
    door: str,
    credential: Credential,
    at: datetime,
    inside: Mapping[int, str] | None = None,
) -> Verdict:
    """Decide whether ``credential`` opens ``door`` (reported by ``device``) at ``at``.

    ``inside`` maps members to the anti-passback zone they last entered and have not left.
    """
    door_rule = policy.doors.get(door)
    # A device may only ask for its own doors: a reader cannot open someone else's door.
    if door_rule is None or door_rule.device != device:
        return Verdict(False, Reason.UNKNOWN_DOOR)
    if policy.is_locked_down(door_rule):
        return Verdict(False, Reason.LOCKDOWN)
    site = policy.site_of(door_rule)
    closures = policy.closures_at(site.id)
    if credential.kind is CredentialKind.PASS:
        return _decide_pass(policy, door_rule, credential, at, site.timezone, closures)
    badge = policy.badges.get(credential.value)
    member = policy.members.get(badge.member_id) if badge else None
    if badge is None or member is None:
        return Verdict(False, Reason.UNKNOWN_BADGE)
    if not badge.active:
        return Verdict(False, Reason.BADGE_REVOKED, member_id=member.id)
    if not member.active:
        return Verdict(False, Reason.MEMBER_SUSPENDED, member_id=member.id)
    schedule = policy.member_schedule(member, door_rule.zone)
    if schedule is None:
        return Verdict(False, Reason.WRONG_ZONE, member_id=member.id)
    refusal = schedule.check(at, site.timezone, closures)
    if refusal is not None:
        return Verdict(False, refusal_reason(refusal, credential.kind), member_id=member.id)
    zone = policy.zones.get(door_rule.zone)
    if (
        zone is not None
        and zone.anti_passback
        and door_rule.direction == "in"
        and (inside or {}).get(member.id) == zone.id
    ):
        return Verdict(False, Reason.ANTI_PASSBACK, member_id=member.id)
    return Verdict(
        True,
        Reason.GRANTED,
        unlock_seconds=door_rule.unlock_seconds,
        member_id=member.id,
        display_name=member.name,
    )


def _decide_pass(
    policy: Policy,
    door: DoorRule,
    credential: Credential,
    at: datetime,
    zone: tzinfo,
    closures: list[Interval],
) -> Verdict:
    guest_pass = policy.passes.get(credential.value)
    if guest_pass is None:
        return Verdict(False, Reason.UNKNOWN_PASS)
    if guest_pass.revoked:
        return Verdict(False, Reason.PASS_REVOKED)
    schedule = policy.pass_schedule(guest_pass, door.id)
    if schedule is None:
        return Verdict(False, Reason.WRONG_ZONE)
    refusal = schedule.check(at, zone, closures)
    if refusal is not None:
        return Verdict(False, refusal_reason(refusal, credential.kind))
    return Verdict(
        True,
        Reason.GRANTED,
        unlock_seconds=door.unlock_seconds,
        display_name=guest_pass.guest_name,
    )
