"""Event records the store could not write, set aside with their reason; admins and operators
read them (credentials redacted) to fix what sent them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from gateway.api.deps import OperatorDep, SessionDep
from gateway.api.pages import Page, PageDep, paginate
from gateway.store.models import SetAsideRecord

router = APIRouter(prefix="/set-aside-records", tags=["set-aside records"])


class SetAsideRecordOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    event_id: str | None
    row: dict[str, Any]
    reason: str
    set_aside_at: datetime


@router.get("", response_model=Page[SetAsideRecordOut])
def list_set_aside_records(
    session: SessionDep, page: PageDep, _: OperatorDep
) -> Page[SetAsideRecordOut]:
    """List the event records the store could not write, newest first, with why."""
    query = select(SetAsideRecord).order_by(
        SetAsideRecord.set_aside_at.desc(), SetAsideRecord.id.desc()
    )
    return paginate(session, query, page, SetAsideRecordOut.model_validate)
