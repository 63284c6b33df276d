"""What stands in the way of deleting a part of the model, said so an admin can act on it.

A row that others still use is not deleted under them: the answer is a 409 naming what uses
it and what to do. History (the access, door and desk logs) never blocks a deletion: it keeps
the ids as they were, as a record of what happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.store.models import (
    AccessWindow,
    Desk,
    Door,
    GuestPass,
    Member,
    guest_pass_doors,
    plan_zones,
)

_SHOWN = 5


def _few(ids: Sequence[object]) -> str:
    shown = ", ".join(str(i) for i in ids[:_SHOWN])
    return shown + (f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else "")


def plan_in_use(session: Session, plan_id: str) -> str | None:
    members = session.scalars(select(Member.id).where(Member.plan_id == plan_id)).all()
    if members:
        return (
            f"plan {plan_id!r} is the plan of {len(members)} member(s) ({_few(members)}): "
            "move them to another plan (PATCH /members/{id}) first"
        )
    return None


def zone_in_use(session: Session, zone_id: str) -> str | None:
    uses = []
    doors = session.scalars(select(Door.id).where(Door.zone_id == zone_id)).all()
    if doors:
        uses.append(f"doors {_few(doors)} lead into it")
    desks = session.scalars(select(Desk.id).where(Desk.zone_id == zone_id)).all()
    if desks:
        uses.append(f"desks {_few(desks)} are in it")
    plans = session.scalars(
        select(plan_zones.c.plan_id).where(plan_zones.c.zone_id == zone_id)
    ).all()
    plans = sorted({*plans, *_window_plans(session, zone_id)})
    if plans:
        uses.append(f"plans {_few(plans)} open it")
    if uses:
        return f"zone {zone_id!r} is in use: {'; '.join(uses)}"
    return None


def _window_plans(session: Session, zone_id: str) -> Sequence[str]:
    return session.scalars(
        select(AccessWindow.plan_id).where(AccessWindow.zone_id == zone_id)
    ).all()


def door_in_use(session: Session, door_id: str) -> str | None:
    now = datetime.now(UTC)
    passes = session.scalars(
        select(GuestPass.id)
        .join(guest_pass_doors, guest_pass_doors.c.pass_id == GuestPass.id)
        .where(
            guest_pass_doors.c.door_id == door_id,
            GuestPass.revoked.is_(False),
            GuestPass.valid_until > now,
        )
        .order_by(GuestPass.id)
    ).all()
    if passes:
        return (
            f"door {door_id!r} is on guest passes still to be used ({_few(passes)}): revoke "
            "them (POST /passes/{id}/revoke) or wait until they expire"
        )
    return None


def device_in_use(session: Session, device_id: str) -> str | None:
    uses = []
    doors = session.scalars(select(Door.id).where(Door.device_id == device_id)).all()
    if doors:
        uses.append(f"it drives doors {_few(doors)}")
    desks = session.scalars(select(Desk.id).where(Desk.device_id == device_id)).all()
    if desks:
        uses.append(f"it reports desks {_few(desks)}")
    if uses:
        return (
            f"device {device_id!r} is in use: {'; '.join(uses)}; delete those first, or revoke "
            "the device (POST /devices/{id}/revoke) to cut it off and keep them"
        )
    return None
