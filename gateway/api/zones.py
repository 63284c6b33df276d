"""Zones: the parts of the space that doors lead into."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from gateway.api.deps import AdminDep, ReaderDep, SessionDep
from gateway.api.fields import Name
from gateway.api.pages import Page, PageDep, paginate
from gateway.store.models import Zone
from varco.protocol import ID_PATTERN

router = APIRouter(prefix="/zones", tags=["zones"])


class ZoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Annotated[str, Field(pattern=ID_PATTERN, examples=["open-space"])]
    name: Annotated[Name, Field(examples=["Open space"])]


class ZoneOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ZoneOut)
def create_zone(body: ZoneIn, session: SessionDep, _: AdminDep) -> Zone:
    """Create a zone."""
    if session.get(Zone, body.id) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"zone {body.id!r} already exists")
    zone = Zone(id=body.id, name=body.name)
    session.add(zone)
    session.commit()
    return zone


@router.get("", response_model=Page[ZoneOut])
def list_zones(session: SessionDep, page: PageDep, _: ReaderDep) -> Page[ZoneOut]:
    """List zones."""
    rows, total = paginate(session, select(Zone).order_by(Zone.id), page)
    return Page(items=[ZoneOut.model_validate(r) for r in rows], total=total, **page.model_dump())
