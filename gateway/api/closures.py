"""Holidays and closures: times when the space is shut to every plan but the 24/7 ones."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from gateway.api.deps import AdminDep, GatewayDep, ReaderDep, SessionDep
from gateway.api.fields import Instant, Name, found, invalid, path_id
from gateway.api.pages import Page, PageDep, paginate
from gateway.store.models import Closure, Site
from varco.protocol import ID_PATTERN

router = APIRouter(prefix="/closures", tags=["closures"])


class ClosureIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Christmas",
                    "site": None,
                    "starts_at": "2026-12-24T18:00:00+01:00",
                    "ends_at": "2026-12-27T08:00:00+01:00",
                }
            ]
        },
    )
    name: Name
    site: Annotated[str | None, Field(pattern=ID_PATTERN, description="null: every site")] = None
    starts_at: Instant
    ends_at: Instant

    @model_validator(mode="after")
    def _ends_after_start(self) -> ClosureIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class ClosureOut(BaseModel):
    id: int
    name: str
    site: str | None
    starts_at: datetime
    ends_at: datetime

    @classmethod
    def of(cls, c: Closure) -> ClosureOut:
        return cls(id=c.id, name=c.name, site=c.site_id, starts_at=c.starts_at, ends_at=c.ends_at)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ClosureOut)
def create_closure(
    body: ClosureIn, session: SessionDep, gateway: GatewayDep, _: AdminDep
) -> ClosureOut:
    """Close the space (one site, or all) from ``starts_at`` to ``ends_at``."""
    if body.site is not None and session.get(Site, body.site) is None:
        raise invalid("site", f"no site {body.site!r}")
    closure = Closure(
        name=body.name, site_id=body.site, starts_at=body.starts_at, ends_at=body.ends_at
    )
    session.add(closure)
    session.commit()
    gateway.policy_changed()
    return ClosureOut.of(closure)


@router.get("", response_model=Page[ClosureOut])
def list_closures(session: SessionDep, page: PageDep, _: ReaderDep) -> Page[ClosureOut]:
    """List closures, soonest first."""
    return paginate(session, select(Closure).order_by(Closure.starts_at), page, ClosureOut.of)


@router.delete("/{closure_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_closure(
    closure_id: Annotated[int, path_id("closure")],
    session: SessionDep,
    gateway: GatewayDep,
    _: AdminDep,
) -> None:
    """Cancel a closure."""
    closure = found(session.get(Closure, closure_id), f"closure {closure_id}")
    session.delete(closure)
    session.commit()
    gateway.policy_changed()
