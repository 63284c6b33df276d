"""Plans: what a member pays for, and so which zones they may enter, and when."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.api.deps import AdminDep, GatewayDep, ReaderDep, SessionDep
from gateway.api.fields import (
    Day,
    Flag,
    IdPath,
    Name,
    WeeklyWindow,
    found,
    invalid,
    window_out,
)
from gateway.api.pages import Page, PageDep, paginate
from gateway.store import dependents
from gateway.store.models import AccessWindow, Plan, Zone
from varco.protocol import ID_PATTERN
from varco.protocol.schedule import minutes

router = APIRouter(prefix="/plans", tags=["plans"])

ZoneId = Annotated[str, Field(pattern=ID_PATTERN)]


class WindowIn(WeeklyWindow):
    """Open ``zone`` (or every zone of the plan, if null) in this weekly window."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "zone": None,
                    "days": ["mon", "tue", "wed", "thu", "fri"],
                    "start": "08:00",
                    "end": "20:00",
                }
            ]
        },
    )
    zone: ZoneId | None = None


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Annotated[str, Field(pattern=ID_PATTERN, examples=["hot-desk"])]
    name: Annotated[Name, Field(examples=["Hot desk"])]
    zones: Annotated[list[ZoneId], Field(max_length=100, examples=[["lobby", "open-space"]])]
    windows: Annotated[
        list[WindowIn],
        Field(max_length=64, description="No windows: the plan's zones are open at any hour"),
    ] = []
    open_on_closures: Annotated[
        Flag, Field(description="true for 24/7 plans: open on holidays and closures too")
    ] = False


class PlanPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    zones: Annotated[list[ZoneId], Field(max_length=100)] | None = None
    windows: Annotated[list[WindowIn], Field(max_length=64)] | None = None
    open_on_closures: Flag | None = None


class WindowOut(BaseModel):
    zone: str | None
    days: list[Day]
    start: str
    end: str


class PlanOut(BaseModel):
    id: str
    name: str
    zones: list[str]
    windows: list[WindowOut]
    open_on_closures: bool

    @classmethod
    def of(cls, plan: Plan) -> PlanOut:
        return cls(
            id=plan.id,
            name=plan.name,
            zones=sorted(z.id for z in plan.zones),
            windows=[WindowOut(zone=w.zone_id, **window_out(w)) for w in plan.windows],
            open_on_closures=plan.open_on_closures,
        )


def _zones(session: Session, ids: list[str]) -> list[Zone]:
    zones = []
    for zone_id in dict.fromkeys(ids):
        zone = session.get(Zone, zone_id)
        if zone is None:
            raise invalid("zones", f"no zone {zone_id!r}")
        zones.append(zone)
    return zones


def _windows(windows: list[WindowIn], zones: list[Zone]) -> list[AccessWindow]:
    zone_ids = {zone.id for zone in zones}
    rows = []
    for n, window in enumerate(windows):
        if window.zone is not None and window.zone not in zone_ids:
            raise invalid(f"windows.{n}.zone", f"{window.zone!r} is not one of the plan's zones")
        rows.append(
            AccessWindow(
                zone_id=window.zone,
                days=window.day_bits(),
                start_minute=minutes(window.start),
                end_minute=minutes(window.end),
            )
        )
    return rows


def _get(session: Session, plan_id: str) -> Plan:
    return found(session.get(Plan, plan_id), f"plan {plan_id!r}")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PlanOut)
def create_plan(body: PlanIn, session: SessionDep, gateway: GatewayDep, _: AdminDep) -> PlanOut:
    """Create a plan that opens the doors of ``zones``, at the hours of ``windows``."""
    if session.get(Plan, body.id) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"plan {body.id!r} already exists")
    zones = _zones(session, body.zones)
    plan = Plan(
        id=body.id,
        name=body.name,
        zones=zones,
        windows=_windows(body.windows, zones),
        open_on_closures=body.open_on_closures,
    )
    session.add(plan)
    session.commit()
    gateway.policy_changed()
    return PlanOut.of(plan)


@router.get("", response_model=Page[PlanOut])
def list_plans(session: SessionDep, page: PageDep, _: ReaderDep) -> Page[PlanOut]:
    """List plans with their zones and opening hours."""
    return paginate(session, select(Plan).order_by(Plan.id), page, PlanOut.of)


@router.get("/{plan_id}", response_model=PlanOut)
def get_plan(plan_id: IdPath, session: SessionDep, _: ReaderDep) -> PlanOut:
    """Show one plan."""
    return PlanOut.of(_get(session, plan_id))


@router.patch("/{plan_id}", response_model=PlanOut)
def update_plan(
    plan_id: IdPath,
    body: PlanPatch,
    session: SessionDep,
    gateway: GatewayDep,
    _: AdminDep,
) -> PlanOut:
    """Change a plan; ``zones`` and ``windows``, when given, replace the old ones."""
    plan = _get(session, plan_id)
    if body.name is not None:
        plan.name = body.name
    if body.zones is not None:
        plan.zones = _zones(session, body.zones)
    if body.windows is not None or body.zones is not None:
        windows = body.windows
        if windows is None:
            windows = [WindowIn.model_validate(w.model_dump()) for w in PlanOut.of(plan).windows]
        plan.windows = _windows(windows, plan.zones)
    if body.open_on_closures is not None:
        plan.open_on_closures = body.open_on_closures
    session.commit()
    gateway.policy_changed()
    return PlanOut.of(plan)


@router.delete("/{plan_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_plan(plan_id: IdPath, session: SessionDep, gateway: GatewayDep, _: AdminDep) -> None:
    """Delete a plan; refused (409, naming them) while members are on it."""
    plan = _get(session, plan_id)
    reason = dependents.plan_in_use(session, plan_id)
    if reason is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, reason)
    session.delete(plan)
    session.commit()
    gateway.policy_changed()
