"""Badges: the cards members tap; several per member, each revocable."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from gateway.api.deps import AdminDep, GatewayDep, ReaderDep, SessionDep
from gateway.api.fields import MAX_ROW_ID, Flag, RowId, found, invalid, masked_uid, path_id
from gateway.api.pages import Page, PageDep, paginate
from gateway.badge_ids import warnings_for
from gateway.store.models import Badge, Door, Member, Role

router = APIRouter(prefix="/badges", tags=["badges"])


class BadgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uid: Annotated[
        str,
        Field(
            pattern=r"^[0-9A-Fa-f]{4,64}$",
            description="The card's UID in hexadecimal, as the reader reports it.",
            examples=["04A1B2C3D4"],
        ),
    ]
    member_id: RowId

    @field_validator("uid")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


class BadgePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    active: Annotated[Flag, Field(description="false revokes the badge", examples=[False])]


class BadgeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    uid: str = Field(description="The card's UID; to a viewer, its last four digits only")
    member_id: int
    active: bool
    created_at: datetime


class BadgeCreated(BadgeOut):
    warnings: list[str] = Field(
        description="Doors whose reader will never send this UID (a decimal card number "
        "registered as hex, a length the reader never reads): the badge is made all the same"
    )


def door_readers(session: SessionDep) -> dict[str, str | None]:
    """Each door and the kind of its reader (None: not said)."""
    return {door: kind for door, kind in session.execute(select(Door.id, Door.reader_kind))}


def _get(session: SessionDep, badge_id: int) -> Badge:
    return found(session.get(Badge, badge_id), f"badge {badge_id}")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=BadgeCreated)
def create_badge(
    body: BadgeIn, session: SessionDep, gateway: GatewayDep, _: AdminDep
) -> BadgeCreated:
    """Give a member a badge."""
    if session.get(Member, body.member_id) is None:
        raise invalid("member_id", f"no member {body.member_id}")
    if session.scalar(select(Badge.id).where(Badge.uid == body.uid)) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"badge {body.uid} is already issued")
    badge = Badge(uid=body.uid, member_id=body.member_id, active=True)
    session.add(badge)
    session.commit()
    gateway.policy_changed()
    shown = BadgeOut.model_validate(badge).model_dump()
    warnings = warnings_for(badge.uid, door_readers(session))
    return BadgeCreated.model_validate({**shown, "warnings": warnings})


@router.get("", response_model=Page[BadgeOut])
def list_badges(
    session: SessionDep,
    page: PageDep,
    role: ReaderDep,
    member_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
) -> Page[BadgeOut]:
    """List badges, optionally of one member."""
    query = select(Badge).order_by(Badge.id)
    if member_id is not None:
        query = query.where(Badge.member_id == member_id)
    return paginate(session, query, page, lambda badge: _shown(badge, role))


def _shown(badge: Badge, role: Role) -> BadgeOut:
    out = BadgeOut.model_validate(badge)
    if role is Role.VIEWER:
        out.uid = masked_uid(out.uid)
    return out


@router.patch("/{badge_id}", response_model=BadgeOut)
def update_badge(
    badge_id: Annotated[int, path_id("badge")],
    body: BadgePatch,
    session: SessionDep,
    gateway: GatewayDep,
    _: AdminDep,
) -> Badge:
    """Revoke or reactivate a badge."""
    badge = _get(session, badge_id)
    badge.active = body.active
    session.commit()
    gateway.policy_changed()
    return badge


@router.delete("/{badge_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_badge(
    badge_id: Annotated[int, path_id("badge")],
    session: SessionDep,
    gateway: GatewayDep,
    _: AdminDep,
) -> None:
    """Delete a badge: it opens no door from now on, online or (once its allow-list
    update arrives) offline. The access log keeps its taps."""
    session.delete(_get(session, badge_id))
    session.commit()
    gateway.policy_changed()
