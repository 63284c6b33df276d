"""Desks and meeting rooms: where they are, so the live page can show them by area."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from gateway.api.deps import AdminDep, GatewayDep, ReaderDep, SessionDep
from gateway.api.fields import IdPath, Name, found, invalid
from gateway.api.pages import Page, PageDep, paginate
from gateway.store.models import Desk, Device, Zone
from varco.protocol import ID_PATTERN

router = APIRouter(prefix="/desks", tags=["desks"])


class DeskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Annotated[str, Field(pattern=ID_PATTERN, examples=["desk-1"])]
    name: Annotated[Name, Field(examples=["Desk 1, by the window"])]
    zone: Annotated[str, Field(pattern=ID_PATTERN, description="The area it is in")]
    kind: Literal["desk", "room"] = "desk"
    device: Annotated[
        str | None,
        Field(
            pattern=ID_PATTERN,
            description="The device whose sensor reports it; the gateway believes no other",
        ),
    ] = None


class DeskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    zone_id: str
    kind: str
    device_id: str | None


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DeskOut)
def create_desk(body: DeskIn, session: SessionDep, gateway: GatewayDep, _: AdminDep) -> Desk:
    """Register a desk or a meeting room in an area; its sensor reports under this id."""
    if session.get(Desk, body.id) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"desk {body.id!r} already exists")
    if session.get(Zone, body.zone) is None:
        raise invalid("zone", f"no zone {body.zone!r}")
    if body.device is not None and session.get(Device, body.device) is None:
        raise invalid("device", f"no device {body.device!r}")
    desk = Desk(
        id=body.id, name=body.name, zone_id=body.zone, kind=body.kind, device_id=body.device
    )
    session.add(desk)
    session.commit()
    gateway.policy_changed()
    return desk


@router.get("", response_model=Page[DeskOut])
def list_desks(session: SessionDep, page: PageDep, _: ReaderDep) -> Page[DeskOut]:
    """List desks and rooms."""
    return paginate(
        session, select(Desk).order_by(Desk.zone_id, Desk.id), page, DeskOut.model_validate
    )


@router.delete("/{desk_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_desk(desk_id: IdPath, session: SessionDep, gateway: GatewayDep, _: AdminDep) -> None:
    """Delete a desk or room: it leaves the live page and reports; its past events stay."""
    session.delete(found(session.get(Desk, desk_id), f"desk {desk_id!r}"))
    session.commit()
    gateway.policy_changed()
