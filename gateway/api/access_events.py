"""The access log: every tap and the decision taken on it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from gateway.api.deps import ReaderDep, SessionDep
from gateway.api.fields import MAX_ROW_ID, IdFilter, Instant, masked_uid
from gateway.api.pages import Page, PageDep, paginate
from gateway.store.models import AccessEvent, Role
from varco.protocol import CredentialKind

router = APIRouter(prefix="/access-events", tags=["access events"])


class AccessEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    event_id: str
    site: str
    device_id: str
    door_id: str
    credential_kind: str
    credential: str = Field(
        description="A badge's UID (to a viewer, its last four digits only); for a guest pass, "
        "pass-<id> (see GET /passes), never its code"
    )
    member_id: int | None
    granted: bool
    reason: str
    decided_offline: bool = Field(
        description="true when the door decided from its cached allow-list, without the gateway"
    )
    allowlist_version: int | None = Field(
        description="The allow-list version the door decided with, when it decided offline"
    )
    tapped_at: datetime
    decided_at: datetime


@router.get("", response_model=Page[AccessEventOut])
def list_access_events(
    session: SessionDep,
    page: PageDep,
    role: ReaderDep,
    door: IdFilter = None,
    member_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
    result: Annotated[Literal["granted", "denied"] | None, Query()] = None,
    since: Annotated[Instant | None, Query(description="Taps at or after this time")] = None,
    until: Annotated[Instant | None, Query(description="Taps before this time")] = None,
) -> Page[AccessEventOut]:
    """List access events, newest first, filtered by door, member, result and time."""
    query = select(AccessEvent).order_by(AccessEvent.tapped_at.desc(), AccessEvent.event_id)
    if door is not None:
        query = query.where(AccessEvent.door_id == door)
    if member_id is not None:
        query = query.where(AccessEvent.member_id == member_id)
    if result is not None:
        query = query.where(AccessEvent.granted.is_(result == "granted"))
    if since is not None:
        query = query.where(AccessEvent.tapped_at >= since)
    if until is not None:
        query = query.where(AccessEvent.tapped_at < until)
    return paginate(session, query, page, lambda row: _shown(row, role))


def _shown(row: AccessEvent, role: Role) -> AccessEventOut:
    event = AccessEventOut.model_validate(row)
    if role is Role.VIEWER and row.credential_kind == CredentialKind.BADGE.value:
        event.credential = masked_uid(event.credential)
    return event
