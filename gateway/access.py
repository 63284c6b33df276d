"""The access decision: a pure function over an in-memory snapshot of the coworking model.

Nothing here touches a disk or a socket (DESIGN invariant 1): the snapshot is rebuilt from the
store when the model changes, and ``decide`` only looks things up in it. Time comes in as an
argument; the site's local time (and so daylight saving) is handled by ``varco.protocol``'s
schedules, which the doors use offline too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from types import MappingProxyType
from typing import Literal, TypeVar
from zoneinfo import ZoneInfo

from immutables import Map

from varco.protocol import (
    Credential,
    CredentialKind,
    Interval,
    Reason,
    Window,
    pass_code_hash,
    refusal_reason,
)
from varco.protocol.schedule import refusal

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
    code_hash: str  # varco.protocol.pass_code_hash: the gateway never keeps a pass's code
    guest_name: str
    doors: frozenset[str]
    valid_from: datetime
    valid_until: datetime
    revoked: bool = False
    id: int | None = None


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
class Structure:
    """The small part of the model, reread whole when it changes: sites, zones, plans, doors."""

    doors: Mapping[str, DoorRule] = field(default_factory=_frozen)
    devices: Mapping[str, DeviceRule] = field(default_factory=_frozen)
    plans: Mapping[str, PlanRule] = field(default_factory=_frozen)
    zones: Mapping[str, ZoneRule] = field(default_factory=_frozen)
    sites: Mapping[str, SiteRule] = field(default_factory=_frozen)
    closures: tuple[ClosureRule, ...] = ()
    desk_areas: Mapping[str, str] = field(default_factory=_frozen)  # desk -> its zone
    # desk -> the device whose sensor reports it (None: not said yet, any device may)
    desk_devices: Mapping[str, str | None] = field(default_factory=_frozen)
    # Derived once per change of structure, so that a tap only looks things up.
    door_views: Mapping[str, DoorView] = field(default_factory=_frozen)

    @classmethod
    def build(
        cls,
        doors: Iterable[DoorRule] = (),
        devices: Iterable[DeviceRule] = (),
        *,
        plans: Iterable[PlanRule] = (),
        zones: Iterable[ZoneRule] = (),
        sites: Iterable[SiteRule] = (),
        closures: Iterable[ClosureRule] = (),
        desk_areas: Mapping[str, str] | None = None,
        desk_devices: Mapping[str, str | None] | None = None,
    ) -> Structure:
        """Index rule lists, and work out what each door needs at a tap."""
        structure = cls(
            doors=_frozen({d.id: d for d in doors}),
            devices=_frozen({d.id: d for d in devices}),
            plans=_frozen({p.id: p for p in plans}),
            zones=_frozen({z.id: z for z in zones}),
            sites=_frozen({s.id: s for s in sites}),
            closures=tuple(closures),
            desk_areas=_frozen(desk_areas),
            desk_devices=_frozen(desk_devices),
        )
        views = {door.id: structure._view(door) for door in structure.doors.values()}
        object.__setattr__(structure, "door_views", _frozen(views))
        return structure

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

    def _view(self, door: DoorRule) -> DoorView:
        site = self.site_of(door)
        zone = self.zones.get(door.zone)
        return DoorView(
            door=door,
            site=site,
            closures=tuple(self.closures_at(site.id)),
            locked_down=self.is_locked_down(door),
            anti_passback_zone=zone.id if zone is not None and zone.anti_passback else None,
        )


@dataclass(frozen=True, slots=True)
class DoorView:
    """What a tap at a door needs, worked out once per change of structure."""

    door: DoorRule
    site: SiteRule
    closures: tuple[Interval, ...]
    locked_down: bool
    anti_passback_zone: str | None


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything ``decide`` needs, indexed for lookups, never mutated once built.

    Members, badges and passes are persistent maps: ``evolve`` makes a new policy that shares
    all but what changed with this one, so a change costs what changed, not the space.
    """

    members: Mapping[int, MemberRule] = field(default_factory=Map)
    badges: Mapping[str, BadgeRule] = field(default_factory=Map)
    member_badges: Mapping[int, frozenset[str]] = field(default_factory=Map)
    passes: Mapping[str, PassRule] = field(default_factory=_frozen)  # by code_hash
    structure: Structure = field(default_factory=Structure)
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
            members=Map({m.id: m for m in members}),
            badges=Map({b.uid: b for b in badges}),
            member_badges=badges_by_member(badges),
            passes=_frozen({p.code_hash: p for p in passes or []}),
            structure=Structure.build(
                doors,
                devices or (),
                plans=plans or (),
                zones=zones or (),
                sites=sites or (),
                closures=closures or (),
                desk_areas=desk_areas,
                desk_devices=desk_devices,
            ),
            version=version,
        )

    def evolve(
        self,
        *,
        members: Mapping[int, MemberRule | None] | None = None,
        badges: Mapping[str, BadgeRule | None] | None = None,
        passes: Iterable[PassRule] | None = None,
        structure: Structure | None = None,
        version: int,
    ) -> Policy:
        """Return this policy with the given entries replaced (``None``: removed).

        ``passes`` and ``structure``, when given, replace the whole of theirs.
        """
        member_map = _update(self.members, members or {})
        badge_map = self.badges
        badges_of = self.member_badges
        if badges:
            badge_map = _update(self.badges, badges)
            index: dict[int, set[str]] = {}
            for uid, rule in badges.items():
                old = self.badges.get(uid)
                for owner in {old.member_id if old else None, rule.member_id if rule else None}:
                    if owner is not None and owner not in index:
                        index[owner] = set(self.member_badges.get(owner, ()))
                if old is not None:
                    index[old.member_id].discard(uid)
                if rule is not None:
                    index[rule.member_id].add(uid)
            badges_of = _update(
                self.member_badges, {m: frozenset(u) if u else None for m, u in index.items()}
            )
        return Policy(
            members=member_map,
            badges=badge_map,
            member_badges=badges_of,
            passes=self.passes if passes is None else _frozen({p.code_hash: p for p in passes}),
            structure=self.structure if structure is None else structure,
            version=version,
        )

    # The structure's parts, by their old names: callers read ``policy.doors`` and friends.
    @property
    def doors(self) -> Mapping[str, DoorRule]:
        return self.structure.doors

    @property
    def devices(self) -> Mapping[str, DeviceRule]:
        return self.structure.devices

    @property
    def plans(self) -> Mapping[str, PlanRule]:
        return self.structure.plans

    @property
    def zones(self) -> Mapping[str, ZoneRule]:
        return self.structure.zones

    @property
    def sites(self) -> Mapping[str, SiteRule]:
        return self.structure.sites

    @property
    def closures(self) -> tuple[ClosureRule, ...]:
        return self.structure.closures

    @property
    def desk_areas(self) -> Mapping[str, str]:
        return self.structure.desk_areas

    @property
    def desk_devices(self) -> Mapping[str, str | None]:
        return self.structure.desk_devices

    def site_of(self, door: DoorRule) -> SiteRule:
        """Return the site a door is at (through its device); UTC if unknown."""
        return self.structure.site_of(door)

    def closures_at(self, site: str) -> list[Interval]:
        """Return the closures that apply at ``site``."""
        return self.structure.closures_at(site)

    def is_locked_down(self, door: DoorRule) -> bool:
        """Tell whether the door, its zone or its site is locked down."""
        return self.structure.is_locked_down(door)


def badges_by_member(badges: Iterable[BadgeRule]) -> Map[int, frozenset[str]]:
    """Index badges by the member who holds them."""
    index: dict[int, set[str]] = {}
    for badge in badges:
        index.setdefault(badge.member_id, set()).add(badge.uid)
    return Map({member: frozenset(uids) for member, uids in index.items()})


def _update(base: Mapping[K, V], changes: Mapping[K, V | None]) -> Map[K, V]:
    """Return the persistent map ``base`` with ``changes`` applied (``None``: removed)."""
    current = base if isinstance(base, Map) else Map(base)
    mutation = current.mutate()
    for key, value in changes.items():
        if value is None:
            mutation.pop(key, None)
        else:
            mutation[key] = value
    return mutation.finish()


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
    Builds nothing: every step is a lookup in the snapshot.
    """
    view = policy.structure.door_views.get(door)
    # A device may only ask for its own doors: a reader cannot open someone else's door.
    if view is None or view.door.device != device:
        return Verdict(False, Reason.UNKNOWN_DOOR)
    if view.locked_down:
        return Verdict(False, Reason.LOCKDOWN)
    if credential.kind is CredentialKind.PASS:
        return _decide_pass(policy, view, credential, at)
    badge = policy.badges.get(credential.value)
    member = policy.members.get(badge.member_id) if badge else None
    if badge is None or member is None:
        return Verdict(False, Reason.UNKNOWN_BADGE)
    if not badge.active:
        return Verdict(False, Reason.BADGE_REVOKED, member_id=member.id)
    if not member.active:
        return Verdict(False, Reason.MEMBER_SUSPENDED, member_id=member.id)
    door_rule = view.door
    plan = policy.structure.plans.get(member.plan)
    if plan is None or door_rule.zone not in plan.zones:
        return Verdict(False, Reason.WRONG_ZONE, member_id=member.id)
    why = refusal(
        at,
        view.site.timezone,
        view.closures,
        windows=plan.windows_for(door_rule.zone),
        valid_from=member.valid_from,
        valid_until=member.valid_until,
        closed_on_closures=not plan.open_on_closures,
    )
    if why is not None:
        return Verdict(False, refusal_reason(why, credential.kind), member_id=member.id)
    if (
        view.anti_passback_zone is not None
        and door_rule.direction == "in"
        and inside
        and inside.get(member.id) == view.anti_passback_zone
    ):
        return Verdict(False, Reason.ANTI_PASSBACK, member_id=member.id)
    return Verdict(
        True,
        Reason.GRANTED,
        unlock_seconds=door_rule.unlock_seconds,
        member_id=member.id,
        display_name=member.name,
    )


def _decide_pass(policy: Policy, view: DoorView, credential: Credential, at: datetime) -> Verdict:
    guest_pass = policy.passes.get(pass_code_hash(credential.value))
    if guest_pass is None:
        return Verdict(False, Reason.UNKNOWN_PASS)
    if guest_pass.revoked:
        return Verdict(False, Reason.PASS_REVOKED)
    if view.door.id not in guest_pass.doors:
        return Verdict(False, Reason.WRONG_ZONE)
    why = refusal(
        at,
        view.site.timezone,
        view.closures,
        windows=(),
        valid_from=guest_pass.valid_from,
        valid_until=guest_pass.valid_until,
        closed_on_closures=True,
    )
    if why is not None:
        return Verdict(False, refusal_reason(why, credential.kind))
    return Verdict(
        True,
        Reason.GRANTED,
        unlock_seconds=view.door.unlock_seconds,
        display_name=guest_pass.guest_name,
    )
