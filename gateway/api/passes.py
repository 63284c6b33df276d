"""Guest passes: time-boxed, issued by a member or for an event, for the doors the host picks.

A pass's code is what the guest presents (typed on a keypad or as a QR code a reader decodes):
it is shown in the answer that creates it, and never again. The gateway keeps only its hash
(``varco.protocol.pass_code_hash``); doors hash a presented code the same way.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from gateway.api.deps import AdminDep, GatewayDep, ReaderDep, SessionDep
from gateway.api.fields import MAX_ROW_ID, Instant, Name, RowId, found, invalid, path_id
from gateway.api.pages import Page, PageDep, paginate
from gateway.store.models import Door, GuestPass, Member
from varco import protocol
from varco.protocol import ID_PATTERN

router = APIRouter(prefix="/passes", tags=["guest passes"])

# 80 random bits, as 20 hex digits: short enough to type, too many to guess or to find back
# from the stored hash.
CODE_BYTES = 10

DoorId = Annotated[str, Field(pattern=ID_PATTERN)]


class PassIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "guest_name": "Katherine Johnson",
                    "host_member_id": 1,
                    "valid_from": "2026-12-01T09:00:00+01:00",
                    "valid_until": "2026-12-01T18:00:00+01:00",
                    "doors": ["front-door"],
                }
            ]
        },
    )
    guest_name: Name
    host_member_id: RowId | None = None
    event: Name | None = None
    valid_from: Instant
    valid_until: Instant
    doors: Annotated[list[DoorId], Field(min_length=1, max_length=64)]

    @model_validator(mode="after")
    def _a_host_or_an_event(self) -> PassIn:
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        if self.host_member_id is None and self.event is None:
            raise ValueError("a pass is issued by a member (host_member_id) or for an event")
        return self


class PassOut(BaseModel):
    id: int
    guest_name: str
    host_member_id: int | None
    event: str | None
    valid_from: datetime
    valid_until: datetime
    doors: list[str]
    revoked: bool

    @classmethod
    def of(cls, p: GuestPass) -> PassOut:
        return cls(
            id=p.id,
            guest_name=p.guest_name,
            host_member_id=p.host_member_id,
            event=p.event,
            valid_from=p.valid_from,
            valid_until=p.valid_until,
            doors=sorted(d.id for d in p.doors),
            revoked=p.revoked,
        )


class PassCreated(PassOut):
    code: str = Field(description="The pass's code; give it to the guest now: it is shown once")
    qr_text: str = Field(description="What the guest's QR code holds, for a QR reader at the door")


def _get(session: SessionDep, pass_id: int) -> GuestPass:
    return found(session.get(GuestPass, pass_id), f"pass {pass_id}")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PassCreated)
def create_pass(body: PassIn, session: SessionDep, gateway: GatewayDep, _: AdminDep) -> PassCreated:
    """Issue a guest pass for some doors and a time span; the answer carries its code."""
    if body.host_member_id is not None and session.get(Member, body.host_member_id) is None:
        raise invalid("host_member_id", f"no member {body.host_member_id}")
    doors = []
    for door_id in dict.fromkeys(body.doors):
        door = session.get(Door, door_id)
        if door is None:
            raise invalid("doors", f"no door {door_id!r}")
        doors.append(door)
    code = secrets.token_hex(CODE_BYTES).upper()
    guest_pass = GuestPass(
        code_hash=protocol.pass_code_hash(code),
        guest_name=body.guest_name,
        host_member_id=body.host_member_id,
        event=body.event,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        doors=doors,
    )
    session.add(guest_pass)
    session.commit()
    gateway.policy_changed()
    return PassCreated(
        **PassOut.of(guest_pass).model_dump(),
        code=code,
        qr_text=protocol.pass_qr_text(code),
    )


@router.get("", response_model=Page[PassOut])
def list_passes(
    session: SessionDep,
    page: PageDep,
    _: ReaderDep,
    current: Annotated[bool, Query(description="only passes valid now or later")] = False,
    host_member_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
) -> Page[PassOut]:
    """List guest passes (without their codes), newest first."""
    query = select(GuestPass).order_by(GuestPass.valid_from.desc(), GuestPass.id)
    if current:
        query = query.where(GuestPass.valid_until > protocol.utcnow(), GuestPass.revoked.is_(False))
    if host_member_id is not None:
        query = query.where(GuestPass.host_member_id == host_member_id)
    return paginate(session, query, page, PassOut.of)


@router.post("/{pass_id}/revoke", response_model=PassOut)
def revoke_pass(
    pass_id: Annotated[int, path_id("pass")],
    session: SessionDep,
    gateway: GatewayDep,
    _: AdminDep,
) -> PassOut:
    """Revoke a guest pass before its time is up."""
    guest_pass = _get(session, pass_id)
    if guest_pass.revoked:
        raise HTTPException(status.HTTP_409_CONFLICT, f"pass {pass_id} is already revoked")
    guest_pass.revoked = True
    session.commit()
    gateway.policy_changed()
    return PassOut.of(guest_pass)
