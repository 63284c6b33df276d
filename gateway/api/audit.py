"""The audit log: who changed what through the API, and when; admins and operators read it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from gateway.api.deps import OperatorDep, SessionDep
from gateway.api.fields import Instant
from gateway.api.pages import Page, PageDep, paginate
from gateway.store.models import AuditAction, AuditEntry, Role

router = APIRouter(prefix="/audit", tags=["audit"])

_TEXT = r"^[^\x00-\x1f\x7f]*$"  # PostgreSQL refuses NUL in text; no control characters at all


class FieldChange(BaseModel):
    old: Any
    new: Any


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: datetime
    actor: str
    actor_role: Role
    action: AuditAction
    entity: str
    entity_id: str
    changes: dict[str, FieldChange]
    details: dict[str, Any] | None


@router.get("", response_model=Page[AuditEntryOut])
def list_audit_entries(
    session: SessionDep,
    page: PageDep,
    _: OperatorDep,
    entity: Annotated[
        str | None,
        Query(pattern=r"^[a-z][a-z_]{0,63}$", description="What was changed: member, zone..."),
    ] = None,
    entity_id: Annotated[
        str | None, Query(min_length=1, max_length=200, pattern=_TEXT, description="Its id")
    ] = None,
    actor: Annotated[
        str | None,
        Query(min_length=1, max_length=120, pattern=_TEXT, description="The token's name"),
    ] = None,
    action: AuditAction | None = None,
    since: Annotated[Instant | None, Query(description="Changes at or after this time")] = None,
    until: Annotated[Instant | None, Query(description="Changes before this time")] = None,
) -> Page[AuditEntryOut]:
    """List changes made through the API, newest first, by entity, actor, action and time."""
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if entity is not None:
        query = query.where(AuditEntry.entity == entity)
    if entity_id is not None:
        query = query.where(AuditEntry.entity_id == entity_id)
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    return paginate(session, query, page, AuditEntryOut.model_validate)
