"""Building the access policy snapshot from the store."""

from __future__ import annotations

import logging
from datetime import datetime
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from immutables import Map
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gateway.access import (
    UTC_ZONE,
    BadgeRule,
    ClosureRule,
    DeviceRule,
    DoorRule,
    MemberRule,
    PassRule,
    PlanRule,
    Policy,
    SiteRule,
    Structure,
    ZoneRule,
    badges_by_member,
)
from gateway.store.changes import Changes
from gateway.store.models import (
    AccessWindow,
    Badge,
    Closure,
    Desk,
    Device,
    Door,
    DoorOpenWindow,
    GuestPass,
    Member,
    MemberStatus,
    Plan,
    Site,
    Zone,
)
from varco.protocol import Interval, Window

log = logging.getLogger(__name__)


def window_of(row: AccessWindow | DoorOpenWindow) -> Window:
    """Turn a stored window into the protocol's ``Window``."""
    return Window(
        days=[day for day in range(7) if row.days & (1 << day)],
        start=_clock(row.start_minute),
        end=_clock(row.end_minute),
    )


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _plan(plan: Plan) -> PlanRule:
    windows: dict[str | None, list[Window]] = {}
    for row in plan.windows:
        windows.setdefault(row.zone_id, []).append(window_of(row))
    return PlanRule(
        id=plan.id,
        zones=frozenset(zone.id for zone in plan.zones),
        windows={zone: tuple(ws) for zone, ws in windows.items()},
        open_on_closures=plan.open_on_closures,
    )


def site_zone(site: Site) -> ZoneInfo:
    """Return a site's time zone; UTC, logged, if this machine does not know its name."""
    try:
        return ZoneInfo(site.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        # The API validates time zones; a bad one in the database must not stop the doors.
        log.error("site %s has an unknown time zone %r; using UTC", site.id, site.timezone)
        return UTC_ZONE


def load_policy(session: Session, version: int = 0) -> Policy:
    """Read the whole coworking model into an immutable ``Policy``."""
    members = [_member(*row) for row in session.execute(_MEMBERS)]
    badges = [_badge(*row) for row in session.execute(_BADGES)]
    return Policy(
        members=Map({m.id: m for m in members}),
        badges=Map({b.uid: b for b in badges}),
        member_badges=badges_by_member(badges),
        passes=MappingProxyType({p.code_hash: p for p in _passes(session)}),
        structure=load_structure(session),
        version=version,
    )


def load_changes(session: Session, policy: Policy, changes: Changes, version: int) -> Policy:
    """Return ``policy`` with what ``changes`` names read again from the store."""
    if changes.everything:
        return load_policy(session, version)
    members: dict[int, MemberRule | None] = dict.fromkeys(changes.members)
    if changes.members:
        for member_row in session.execute(_MEMBERS.where(Member.id.in_(changes.members))):
            member = _member(*member_row)
            members[member.id] = member
    # A member's badges are read with the member: one deleted with its member leaves no row.
    uids = set(changes.badges)
    for member_id in changes.members:
        uids |= policy.member_badges.get(member_id, frozenset())
    badges: dict[str, BadgeRule | None] = dict.fromkeys(uids)
    conditions = []
    if uids:
        conditions.append(Badge.uid.in_(uids))
    if changes.members:
        conditions.append(Badge.member_id.in_(changes.members))
    if conditions:
        for badge_row in session.execute(_BADGES.where(or_(*conditions))):
            badge = _badge(*badge_row)
            badges[badge.uid] = badge
    return policy.evolve(
        members=members,
        badges=badges,
        passes=_passes(session) if changes.passes else None,
        structure=load_structure(session) if changes.structure else None,
        version=version,
    )


def load_structure(session: Session) -> Structure:
    """Read sites, zones, plans, doors, devices, closures and desks (the small part)."""
    # A revoked device decides nothing: its doors answer unknown_door and get no allow-list.
    revoked = set(session.scalars(select(Device.id).where(Device.revoked_at.is_not(None))))
    doors = [
        DoorRule(
            id=d.id,
            zone=d.zone_id,
            device=None if d.device_id in revoked else d.device_id,
            unlock_seconds=d.unlock_seconds,
            direction="out" if d.direction == "out" else "in",
            locked_down=d.locked_down,
            open_windows=tuple(window_of(w) for w in d.open_windows),
            open_after_first_entry=d.open_after_first_entry,
        )
        for d in session.scalars(select(Door))
    ]
    devices = [
        DeviceRule(id=d.id, site=d.site, allowlist_key=bytes.fromhex(d.allowlist_key))
        for d in session.scalars(select(Device))
        if d.id not in revoked
    ]
    sites = {s.id: s for s in session.scalars(select(Site))}
    for site in sorted({d.site for d in devices} - set(sites)):
        log.warning("site %r has no time zone set (POST /sites); its hours are read in UTC", site)
    desks = list(session.scalars(select(Desk)))
    return Structure.build(
        doors,
        devices,
        plans=[_plan(p) for p in session.scalars(select(Plan))],
        zones=[
            ZoneRule(id=z.id, anti_passback=z.anti_passback, locked_down=z.locked_down)
            for z in session.scalars(select(Zone))
        ],
        sites=[
            SiteRule(id=s.id, timezone=site_zone(s), locked_down=s.locked_down)
            for s in sites.values()
        ],
        closures=[
            ClosureRule(site=c.site_id, interval=Interval(starts_at=c.starts_at, ends_at=c.ends_at))
            for c in session.scalars(select(Closure))
        ],
        desk_areas={d.id: d.zone_id for d in desks},
        desk_devices={d.id: d.device_id for d in desks},
    )


# Members and badges are read as rows, not ORM objects: at 50,000 members that is several
# times faster, and they are the part of the model that grows.
_MEMBERS = select(
    Member.id, Member.name, Member.status, Member.plan_id, Member.valid_from, Member.valid_until
)
_BADGES = select(Badge.uid, Badge.member_id, Badge.active)


def _member(
    id_: int,
    name: str,
    status: MemberStatus,
    plan: str,
    valid_from: datetime | None,
    valid_until: datetime | None,
) -> MemberRule:
    return MemberRule(
        id=id_,
        name=name,
        active=status is MemberStatus.ACTIVE,
        plan=plan,
        valid_from=valid_from,
        valid_until=valid_until,
    )


def _badge(uid: str, member_id: int, active: bool) -> BadgeRule:
    return BadgeRule(uid=uid, member_id=member_id, active=active)


def _passes(session: Session) -> list[PassRule]:
    return [
        PassRule(
            code_hash=p.code_hash,
            id=p.id,
            guest_name=p.guest_name,
            doors=frozenset(door.id for door in p.doors),
            valid_from=p.valid_from,
            valid_until=p.valid_until,
            revoked=p.revoked,
        )
        for p in session.scalars(select(GuestPass))
    ]
