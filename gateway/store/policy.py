"""Building the access policy snapshot from the store."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
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
    ZoneRule,
)
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
    members = [
        MemberRule(
            id=m.id,
            name=m.name,
            active=m.status is MemberStatus.ACTIVE,
            plan=m.plan_id,
            valid_from=m.valid_from,
            valid_until=m.valid_until,
        )
        for m in session.scalars(select(Member))
    ]
    badges = [
        BadgeRule(uid=b.uid, member_id=b.member_id, active=b.active)
        for b in session.scalars(select(Badge))
    ]
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
    passes = [
        PassRule(
            code=p.code,
            guest_name=p.guest_name,
            doors=frozenset(door.id for door in p.doors),
            valid_from=p.valid_from,
            valid_until=p.valid_until,
            revoked=p.revoked,
        )
        for p in session.scalars(select(GuestPass))
    ]
    sites = {s.id: s for s in session.scalars(select(Site))}
    desks = list(session.scalars(select(Desk)))
    for site in sorted({d.site for d in devices} - set(sites)):
        log.warning("site %r has no time zone set (POST /sites); its hours are read in UTC", site)
    return Policy.build(
        members,
        badges,
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
        passes=passes,
        closures=[
            ClosureRule(site=c.site_id, interval=Interval(starts_at=c.starts_at, ends_at=c.ends_at))
            for c in session.scalars(select(Closure))
        ],
        desk_areas={d.id: d.zone_id for d in desks},
        desk_devices={d.id: d.device_id for d in desks},
        version=version,
    )
