"""Zones: the parts of the space that doors lead into."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from gateway.api.deps import AdminDep, GatewayDep, ReaderDep, SessionDep
from gateway.api.fields import Flag, IdPath, Name, found
from gateway.api.pages import Page, PageDep, paginate
from gateway.store import dependents
from gateway.store.models import Zone
from varco.protocol import ID_PATTERN

router = APIRouter(prefix="/zones", tags=["zones"])


class ZoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Annotated[str, Field(pattern=ID_PATTERN, examples=["open-space"])]
    name: Annotated[Name, Field(examples=["Open space"])]
    anti_passback: Annotated[
        Flag,
        Field(description="A member who entered must leave through an 'out' door to enter again"),
    ] = False


class ZonePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    anti_passback: Flag | None = None


class ZoneOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    anti_passback: bool
    locked_down: bool


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ZoneOut)
def create_zone(body: ZoneIn, session: SessionDep, _: AdminDep) -> Zone:
    """Create a zone."""
    if session.get(Zone, body.id) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"zone {body.id!r} already exists")
    zone = Zone(id=body.id, name=body.name, anti_passback=body.anti_passback, locked_down=False)
    session.add(zone)
    session.commit()
    return zone


@router.get("", response_model=Page[ZoneOut])
def list_zones(session: SessionDep, page: PageDep, _: ReaderDep) -> Page[ZoneOut]:
    """List zones."""
    return paginate(session, select(Zone).order_by(Zone.id), page, ZoneOut.model_validate)


@router.patch("/{zone_id}", response_model=ZoneOut)
def update_zone(
    zone_id: IdPath, body: ZonePatch, session: SessionDep, gateway: GatewayDep, _: AdminDep
) -> Zone:
    """Rename a zone or turn its anti-passback on or off."""
    zone = found(session.get(Zone, zone_id), f"zone {zone_id!r}")
    if body.name is not None:
        zone.name = body.name
    if body.anti_passback is not None:
        zone.anti_passback = body.anti_passback
    session.commit()
    gateway.policy_changed()
    return zone


@router.delete("/{zone_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_zone(zone_id: IdPath, session: SessionDep, gateway: GatewayDep, _: AdminDep) -> None:
    """Delete a zone; refused (409, naming them) while doors, desks or plans use it."""
    zone = found(session.get(Zone, zone_id), f"zone {zone_id!r}")
    reason = dependents.zone_in_use(session, zone_id)
    if reason is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, reason)
    session.delete(zone)
    session.commit()
    gateway.policy_changed()
