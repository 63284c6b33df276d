"""Doors: each leads into a zone and is driven by one door controller."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from gateway.api.deps import AdminDep, GatewayDep, OperatorDep, ReaderDep, SessionDep
from gateway.api.fields import (
    Day,
    Flag,
    IdPath,
    Name,
    Seconds,
    WeeklyWindow,
    found,
    invalid,
    window_out,
)
from gateway.api.pages import Page, PageDep, paginate
from gateway.badge_ids import ReaderKind
from gateway.errors import GatewayError
from gateway.store import audit, dependents
from gateway.store.models import AuditAction, Device, DeviceKind, Door, DoorOpenWindow, Zone
from varco.protocol import ID_PATTERN, CommandAction
from varco.protocol.schedule import minutes

router = APIRouter(prefix="/doors", tags=["doors"])


class DoorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Annotated[str, Field(pattern=ID_PATTERN, examples=["front-door"])]
    name: Annotated[Name, Field(examples=["Front door"])]
    zone: Annotated[str, Field(pattern=ID_PATTERN, examples=["lobby"])]
    device: Annotated[str | None, Field(pattern=ID_PATTERN, examples=["door-ctl-1"])] = None
    unlock_seconds: Annotated[Seconds, Field(examples=[5.0])] = 5.0
    direction: Annotated[
        Literal["in", "out"],
        Field(description="'out' for an exit reader: leaving the zone (anti-passback)"),
    ] = "in"
    reader_kind: Annotated[ReaderKind | None, Field(description=READER_KIND)] = None


READER_KIND = (
    "The kind of reader at the door, as in its device's configuration: badges whose UID it "
    "never sends are warned about when they are registered"
)


class DoorPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    reader_kind: Annotated[ReaderKind | None, Field(description=READER_KIND)] = None
    unlock_seconds: Seconds | None = None
    direction: Literal["in", "out"] | None = None
    open_windows: (
        Annotated[
            list[WeeklyWindow],
            Field(
                max_length=64,
                description="Office hours: the door stays unlocked in these windows (site time)",
                examples=[
                    [
                        {
                            "days": ["mon", "tue", "wed", "thu", "fri"],
                            "start": "09:00",
                            "end": "18:00",
                        }
                    ]
                ],
            ),
        ]
        | None
    ) = None
    open_after_first_entry: (
        Annotated[
            Flag,
            Field(description="Hold it open only once someone authorised has come in that day"),
        ]
        | None
    ) = None


class OpenWindowOut(BaseModel):
    days: list[Day]
    start: str
    end: str


class UnlockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: Annotated[Seconds, Field(description="default: the door's own")] | None = None


class Unlocked(BaseModel):
    door: str
    device: str
    command_id: str
    seconds: float


class DoorOut(BaseModel):
    id: str
    name: str
    zone: str
    device: str | None
    unlock_seconds: float
    direction: str
    locked_down: bool
    open_windows: list[OpenWindowOut]
    open_after_first_entry: bool
    reader_kind: str | None
    state: str | None

    @classmethod
    def of(cls, d: Door) -> DoorOut:
        return cls(
            id=d.id,
            name=d.name,
            zone=d.zone_id,
            device=d.device_id,
            unlock_seconds=d.unlock_seconds,
            direction=d.direction,
            locked_down=d.locked_down,
            open_windows=[OpenWindowOut(**window_out(w)) for w in d.open_windows],
            open_after_first_entry=d.open_after_first_entry,
            reader_kind=d.reader_kind,
            state=d.state,
        )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DoorOut)
def create_door(body: DoorIn, session: SessionDep, gateway: GatewayDep, _: AdminDep) -> DoorOut:
    """Create a door in a zone, driven by a door controller."""
    if session.get(Door, body.id) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"door {body.id!r} already exists")
    if session.get(Zone, body.zone) is None:
        raise invalid("zone", f"no zone {body.zone!r}")
    if body.device is not None:
        device = session.get(Device, body.device)
        if device is None:
            raise invalid("device", f"no device {body.device!r}")
        if device.revoked_at is not None:
            raise invalid("device", f"{body.device!r} is revoked")
        if device.kind is not DeviceKind.DOOR_CONTROLLER:
            raise invalid(
                "device", f"{body.device!r} is a {device.kind.value}, not a door controller"
            )
    door = Door(
        id=body.id,
        name=body.name,
        zone_id=body.zone,
        device_id=body.device,
        unlock_seconds=body.unlock_seconds,
        direction=body.direction,
        locked_down=False,
        reader_kind=body.reader_kind,
    )
    session.add(door)
    session.commit()
    gateway.policy_changed()
    return DoorOut.of(door)


@router.get("", response_model=Page[DoorOut])
def list_doors(session: SessionDep, page: PageDep, _: ReaderDep) -> Page[DoorOut]:
    """List doors with their last reported state."""
    return paginate(session, select(Door).order_by(Door.id), page, DoorOut.of)


def _get(session: SessionDep, door_id: str) -> Door:
    return found(session.get(Door, door_id), f"door {door_id!r}")


@router.patch("/{door_id}", response_model=DoorOut)
def update_door(
    door_id: IdPath, body: DoorPatch, session: SessionDep, gateway: GatewayDep, _: AdminDep
) -> DoorOut:
    """Rename a door, change its unlock time, its direction or its office hours."""
    door = _get(session, door_id)
    if body.name is not None:
        door.name = body.name
    if body.unlock_seconds is not None:
        door.unlock_seconds = body.unlock_seconds
    if body.direction is not None:
        door.direction = body.direction
    if body.reader_kind is not None:
        door.reader_kind = body.reader_kind
    if body.open_windows is not None:
        door.open_windows = [
            DoorOpenWindow(
                days=window.day_bits(),
                start_minute=minutes(window.start),
                end_minute=minutes(window.end),
            )
            for window in body.open_windows
        ]
    if body.open_after_first_entry is not None:
        door.open_after_first_entry = body.open_after_first_entry
    session.commit()
    gateway.policy_changed()
    return DoorOut.of(door)


@router.delete("/{door_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_door(door_id: IdPath, session: SessionDep, gateway: GatewayDep, _: AdminDep) -> None:
    """Delete a door; refused (409, with the reason) while guest passes still to be used
    name it. Its controller stops deciding for it; the logs keep its past events."""
    door = _get(session, door_id)
    reason = dependents.door_in_use(session, door_id)
    if reason is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, reason)
    session.delete(door)
    session.commit()
    gateway.policy_changed()


@router.post("/{door_id}/unlock", response_model=Unlocked, status_code=status.HTTP_202_ACCEPTED)
def unlock_door(
    door_id: IdPath, body: UnlockIn, session: SessionDep, gateway: GatewayDep, _: OperatorDep
) -> Unlocked:
    """Open a door now, from afar (an operator letting in a courier)."""
    policy = gateway.policy()
    door = found(policy.doors.get(door_id), f"door {door_id!r}")
    if door.device is None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"door {door_id!r} has no controller")
    if policy.is_locked_down(door):
        raise HTTPException(status.HTTP_409_CONFLICT, f"door {door_id!r} is locked down")
    seconds = body.seconds or door.unlock_seconds
    try:
        command_id = gateway.send_command_from_thread(
            door.device, CommandAction.UNLOCK, door=door_id, seconds=seconds
        )
    except GatewayError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    # Who opened which door, and when: a remote unlock changes no row, so it is logged as such.
    audit.record(
        session,
        action=AuditAction.COMMAND,
        entity="door",
        entity_id=door_id,
        details={"command": "unlock", "seconds": seconds, "command_id": command_id},
    )
    session.commit()
    return Unlocked(door=door_id, device=door.device, command_id=command_id, seconds=seconds)
