"""Lockdown of a door, a zone or a whole site, and its release; operators may do both.

A lockdown denies every credential at the doors it covers, online and offline: the affected
allow-lists are republished at once with the doors marked locked down, and a door that is
unlocked at that moment relocks.
"""

from __future__ import annotations

from enum import StrEnum

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel

from gateway.api.deps import GatewayDep, OperatorDep, SessionDep
from gateway.api.fields import IdPath
from gateway.store.models import Door, Site, Zone

router = APIRouter(tags=["lockdown"])


class Scope(StrEnum):
    SITES = "sites"
    ZONES = "zones"
    DOORS = "doors"


class Lockdown(BaseModel):
    scope: Scope
    id: str
    locked_down: bool


def _set(
    scope: Scope, item_id: str, value: bool, session: SessionDep, gateway: GatewayDep
) -> Lockdown:
    item: Site | Zone | Door | None
    if scope is Scope.SITES:
        item = session.get(Site, item_id)
    elif scope is Scope.ZONES:
        item = session.get(Zone, item_id)
    else:
        item = session.get(Door, item_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {scope.value[:-1]} {item_id!r}")
    item.locked_down = value
    session.commit()
    gateway.policy_changed()
    return Lockdown(scope=scope, id=item_id, locked_down=value)


@router.put("/{scope}/{item_id}/lockdown", response_model=Lockdown)
def lock_down(
    scope: Scope, item_id: IdPath, session: SessionDep, gateway: GatewayDep, _: OperatorDep
) -> Lockdown:
    """Lock down a site, a zone or a door: nobody gets in until it is released."""
    return _set(scope, item_id, True, session, gateway)


@router.delete("/{scope}/{item_id}/lockdown", response_model=Lockdown)
def release(
    scope: Scope, item_id: IdPath, session: SessionDep, gateway: GatewayDep, _: OperatorDep
) -> Lockdown:
    """Release a lockdown."""
    return _set(scope, item_id, False, session, gateway)
