"""Building the access policy snapshot from the store."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.access import BadgeRule, DeviceRule, DoorRule, MemberRule, Policy
from gateway.store.models import Badge, Device, Door, Member, MemberStatus, Plan


def load_policy(session: Session, version: int = 0) -> Policy:
    """Read members, badges, plans and doors into an immutable ``Policy``."""
    plan_zones = {
        plan.id: frozenset(zone.id for zone in plan.zones) for plan in session.scalars(select(Plan))
    }
    members = [
        MemberRule(
            id=m.id,
            name=m.name,
            active=m.status is MemberStatus.ACTIVE,
            zones=plan_zones.get(m.plan_id, frozenset()),
        )
        for m in session.scalars(select(Member))
    ]
    badges = [
        BadgeRule(uid=b.uid, member_id=b.member_id, active=b.active)
        for b in session.scalars(select(Badge))
    ]
    doors = [
        DoorRule(id=d.id, zone=d.zone_id, device=d.device_id, unlock_seconds=d.unlock_seconds)
        for d in session.scalars(select(Door))
    ]
    devices = [
        DeviceRule(id=d.id, site=d.site, allowlist_key=bytes.fromhex(d.allowlist_key))
        for d in session.scalars(select(Device))
    ]
    return Policy.build(members, badges, doors, devices, version=version)
