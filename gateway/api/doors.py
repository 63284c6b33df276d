"""Doors: each leads into a zone and is driven by one door controller."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from gateway.api.deps import AdminDep, GatewayDep, ReaderDep, SessionDep
from gateway.api.fields import Name
from gateway.api.pages import Page, PageDep, paginate
from gateway.store.models import Device, DeviceKind, Door, Zone
from varco.protocol import ID_PATTERN

router = APIRouter(prefix="/doors", tags=["doors"])


class DoorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Annotated[str, Field(pattern=ID_PATTERN, examples=["front-door"])]
    name: Annotated[Name, Field(examples=["Front door"])]
    zone: Annotated[str, Field(pattern=ID_PATTERN, examples=["lobby"])]
    device: Annotated[str | None, Field(pattern=ID_PATTERN, examples=["door-ctl-1"])] = None
    unlock_seconds: Annotated[float, Field(gt=0, le=300, examples=[5.0])] = 5.0


class DoorOut(BaseModel):
    id: str
    name: str
    zone: str
    device: str | None
    unlock_seconds: float
    state: str | None

    @classmethod
    def of(cls, d: Door) -> DoorOut:
        return cls(
            id=d.id,
            name=d.name,
            zone=d.zone_id,
            device=d.device_id,
            unlock_seconds=d.unlock_seconds,
            state=d.state,
        )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DoorOut)
def create_door(body: DoorIn, session: SessionDep, gateway: GatewayDep, _: AdminDep) -> DoorOut:
    """Create a door in a zone, driven by a door controller."""
    if session.get(Door, body.id) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"door {body.id!r} already exists")
    if session.get(Zone, body.zone) is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"zone: no zone {body.zone!r}")
    if body.device is not None:
        device = session.get(Device, body.device)
        if device is None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, f"device: no device {body.device!r}"
            )
        if device.kind is not DeviceKind.DOOR_CONTROLLER:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"device: {body.device!r} is a {device.kind.value}, not a door controller",
            )
    door = Door(
        id=body.id,
        name=body.name,
        zone_id=body.zone,
        device_id=body.device,
        unlock_seconds=body.unlock_seconds,
    )
    session.add(door)
    session.commit()
    gateway.reload_policy()
    return DoorOut.of(door)


@router.get("", response_model=Page[DoorOut])
def list_doors(session: SessionDep, page: PageDep, _: ReaderDep) -> Page[DoorOut]:
    """List doors with their last reported state."""
    rows, total = paginate(session, select(Door).order_by(Door.id), page)
    return Page(items=[DoorOut.of(r) for r in rows], total=total, **page.model_dump())
