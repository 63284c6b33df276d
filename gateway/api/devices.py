"""Devices: the Pis at doors and desks; a device's id is its MQTT identity."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from gateway.api.deps import AdminDep, ReaderDep, SessionDep
from gateway.api.fields import Name
from gateway.api.pages import Page, PageDep, paginate
from gateway.store.models import Device, DeviceKind
from varco.protocol import ID_PATTERN

router = APIRouter(prefix="/devices", tags=["devices"])


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Annotated[str, Field(pattern=ID_PATTERN, examples=["door-ctl-1"])]
    site: Annotated[str, Field(pattern=ID_PATTERN, examples=["milano"])]
    kind: DeviceKind
    name: Annotated[Name, Field(examples=["Front door controller"])] | None = None


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    site: str
    kind: DeviceKind
    name: str
    state: str | None = Field(description="online or offline, from the device's status")
    software: str | None
    last_status_at: datetime | None
    allowlist_version: int | None = Field(description="The allow-list the device holds")
    outbox_depth: int | None = Field(description="Events waiting on the device for the broker")
    created_at: datetime


class DeviceCreated(DeviceOut):
    allowlist_key: str = Field(
        description=(
            "The key of the device's allow-list digests: put it in the device's configuration "
            "(allowlist_key). Shown only in this answer."
        )
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DeviceCreated)
def create_device(body: DeviceIn, session: SessionDep, _: AdminDep) -> Device:
    """Register a device."""
    if session.get(Device, body.id) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"device {body.id!r} already exists")
    device = Device(id=body.id, site=body.site, kind=body.kind, name=body.name or "")
    session.add(device)
    session.commit()
    return device


@router.get("", response_model=Page[DeviceOut])
def list_devices(session: SessionDep, page: PageDep, _: ReaderDep) -> Page[DeviceOut]:
    """List devices with their last reported status."""
    rows, total = paginate(session, select(Device).order_by(Device.id), page)
    return Page(items=[DeviceOut.model_validate(r) for r in rows], total=total, **page.model_dump())
