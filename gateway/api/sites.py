"""Sites: the coworking locations, each with the time zone its opening hours are written in."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from gateway.api.deps import AdminDep, GatewayDep, ReaderDep, SessionDep
from gateway.api.fields import IdPath, Name, found
from gateway.api.pages import Page, PageDep, paginate
from gateway.store.models import Site
from varco.protocol import ID_PATTERN

router = APIRouter(prefix="/sites", tags=["sites"])


def _known_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name like Europe/Rome"
        ) from None
    if value not in available_timezones() and value != "UTC":
        raise ValueError(f"unknown time zone {value!r}; use an IANA name like Europe/Rome")
    return value


TimeZoneName = Annotated[str, Field(max_length=64, examples=["Europe/Rome"])]


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Annotated[str, Field(pattern=ID_PATTERN, examples=["milano"])]
    name: Annotated[Name, Field(examples=["Milano Navigli"])]
    timezone: TimeZoneName = "UTC"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _known_timezone(value)


class SitePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    timezone: TimeZoneName | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else _known_timezone(value)


class SiteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    timezone: str
    locked_down: bool


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SiteOut)
def create_site(body: SiteIn, session: SessionDep, gateway: GatewayDep, _: AdminDep) -> Site:
    """Create a site; devices name it in their topics."""
    if session.get(Site, body.id) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"site {body.id!r} already exists")
    site = Site(id=body.id, name=body.name, timezone=body.timezone, locked_down=False)
    session.add(site)
    session.commit()
    gateway.policy_changed()
    return site


@router.get("", response_model=Page[SiteOut])
def list_sites(session: SessionDep, page: PageDep, _: ReaderDep) -> Page[SiteOut]:
    """List sites."""
    return paginate(session, select(Site).order_by(Site.id), page, SiteOut.model_validate)


@router.patch("/{site_id}", response_model=SiteOut)
def update_site(
    site_id: IdPath, body: SitePatch, session: SessionDep, gateway: GatewayDep, _: AdminDep
) -> Site:
    """Rename a site or change its time zone."""
    site = found(session.get(Site, site_id), f"site {site_id!r}")
    if body.name is not None:
        site.name = body.name
    if body.timezone is not None:
        site.timezone = body.timezone
    session.commit()
    gateway.policy_changed()
    return site
