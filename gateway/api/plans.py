"""Plans: what a member pays for, and so which zones they may enter."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from gateway.api.deps import AdminDep, GatewayDep, ReaderDep, SessionDep
from gateway.api.fields import Name
from gateway.api.pages import Page, PageDep, paginate
from gateway.store.models import Plan, Zone
from varco.protocol import ID_PATTERN

router = APIRouter(prefix="/plans", tags=["plans"])

ZoneId = Annotated[str, Field(pattern=ID_PATTERN)]


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Annotated[str, Field(pattern=ID_PATTERN, examples=["hot-desk"])]
    name: Annotated[Name, Field(examples=["Hot desk"])]
    zones: Annotated[list[ZoneId], Field(max_length=100, examples=[["lobby", "open-space"]])]


class PlanOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    zones: list[str]

    @classmethod
    def of(cls, plan: Plan) -> PlanOut:
        return cls(id=plan.id, name=plan.name, zones=sorted(z.id for z in plan.zones))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PlanOut)
def create_plan(body: PlanIn, session: SessionDep, gateway: GatewayDep, _: AdminDep) -> PlanOut:
    """Create a plan that opens the doors of ``zones``."""
    if session.get(Plan, body.id) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"plan {body.id!r} already exists")
    zones = []
    for zone_id in dict.fromkeys(body.zones):
        zone = session.get(Zone, zone_id)
        if zone is None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, f"zones: no zone {zone_id!r}"
            )
        zones.append(zone)
    plan = Plan(id=body.id, name=body.name, zones=zones)
    session.add(plan)
    session.commit()
    gateway.reload_policy()
    return PlanOut.of(plan)


@router.get("", response_model=Page[PlanOut])
def list_plans(session: SessionDep, page: PageDep, _: ReaderDep) -> Page[PlanOut]:
    """List plans with their zones."""
    rows, total = paginate(session, select(Plan).order_by(Plan.id), page)
    return Page(items=[PlanOut.of(r) for r in rows], total=total, **page.model_dump())
