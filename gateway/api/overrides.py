"""Remote configuration of a device: what the API overrides of the file on its Pi
(``GET /devices/{id}/config`` gives the file itself, as installed).

The file stays the base. The overrides go out retained on the device's ``config`` channel
with a version; the device checks them with its file's schema, applies them without a
restart (a reader's hold-off with a clean one), and says in its status which version it runs
or why it refused one, which ``GET`` shows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, Strict
from sqlalchemy import select

from gateway.api.deps import AdminDep, GatewayDep, ReaderDep, SessionDep
from gateway.api.devices import DeviceId
from gateway.api.fields import Seconds, found, invalid
from gateway.errors import GatewayError
from gateway.remote_config import payload_of, set_overrides
from gateway.store.models import Device, DeviceOverrides, Door
from varco import protocol
from varco.protocol import ID_PATTERN, PayloadError

router = APIRouter(prefix="/devices", tags=["devices"])

DoorId = Annotated[str, Field(pattern=ID_PATTERN, max_length=64)]


class DoorOverridesIn(BaseModel):
    """A door's settings that replace its file's; a field left out keeps the file's value."""

    model_config = ConfigDict(extra="forbid")
    unlock_seconds: Seconds | None = None
    held_open_seconds: Annotated[float, Field(gt=0, le=3600), Strict()] | None = None
    decision_timeout_seconds: Annotated[float, Field(gt=0, le=10), Strict()] | None = None
    fail_mode: Literal["secure", "safe"] | None = None
    hold_off_seconds: (
        Annotated[
            float,
            Field(ge=0, le=60, description="The reader's hold-off: the device restarts for it"),
            Strict(),
        ]
        | None
    ) = None


class OverridesIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"log_level": "INFO", "doors": {"front-door": {"unlock_seconds": 7.0}}}]
        },
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] | None = None
    doors: Annotated[dict[DoorId, DoorOverridesIn], Field(max_length=64)] = {}


class OverridesOut(BaseModel):
    device: str
    version: int | None = Field(description="The newest config's version; null: none yet")
    log_level: str | None
    doors: dict[str, DoorOverridesIn]
    updated_at: datetime | None
    applied_version: int | None = Field(description="The version the device says it runs")
    applied: bool = Field(description="The device runs the newest version")
    error: str | None = Field(description="Why the device refused the newest version")
    reported_at: datetime | None
    published: bool | None = Field(
        default=None,
        description="In a change's answer: false when the broker could not be reached; the "
        "config goes out when the gateway reconnects",
    )

    @classmethod
    def of(cls, device_id: str, record: DeviceOverrides | None) -> OverridesOut:
        overrides = record.overrides if record is not None else {}
        return cls(
            device=device_id,
            version=record.version if record else None,
            log_level=overrides.get("log_level"),
            doors={
                door: DoorOverridesIn.model_validate(values)
                for door, values in (overrides.get("doors") or {}).items()
            },
            updated_at=record.updated_at if record else None,
            applied_version=record.applied_version if record else None,
            applied=record is not None and record.applied_version == record.version,
            error=record.error if record else None,
            reported_at=record.reported_at if record else None,
        )


def _device(session: SessionDep, device_id: str) -> Device:
    return found(session.get(Device, device_id), f"device {device_id!r}")


@router.get("/{device_id}/overrides", response_model=OverridesOut)
def get_overrides(device_id: DeviceId, session: SessionDep, _: ReaderDep) -> OverridesOut:
    """Show what the API overrides of a device's file, and the version the device runs."""
    _device(session, device_id)
    return OverridesOut.of(device_id, session.get(DeviceOverrides, device_id))


def _change(
    session: SessionDep, gateway: GatewayDep, device: Device, overrides: dict[str, object]
) -> OverridesOut:
    record = set_overrides(session, device.id, overrides)
    payload = payload_of(record)
    try:
        protocol.encode(payload)  # nothing is kept that the device would refuse to read
    except PayloadError as exc:
        raise invalid("doors", str(exc)) from None
    session.commit()
    answer = OverridesOut.of(device.id, record)
    try:
        gateway.run_from_thread(gateway.configs.send(device.site, device.id, payload), "the config")
        answer.published = True
    except GatewayError:
        answer.published = False
    return answer


@router.put("/{device_id}/overrides", response_model=OverridesOut)
def set_overrides_of(
    device_id: DeviceId, body: OverridesIn, session: SessionDep, gateway: GatewayDep, _: AdminDep
) -> OverridesOut:
    """Override settings of a device's file: its log level, and per door the unlock time,
    held-open time, decision timeout, fail mode and reader hold-off. Replaces the overrides
    before; the device gets them at once, or when it next connects."""
    device = _device(session, device_id)
    if device.revoked_at is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"device {device_id!r} is revoked")
    own = set(session.scalars(select(Door.id).where(Door.device_id == device_id)))
    for door in body.doors:
        if door not in own:
            raise invalid(f"doors.{door}", f"door {door!r} is not driven by {device_id!r}")
    overrides = body.model_dump(exclude_none=True)
    if not overrides.get("doors"):
        overrides.pop("doors", None)
    return _change(session, gateway, device, overrides)


@router.delete("/{device_id}/overrides", response_model=OverridesOut)
def clear_overrides(
    device_id: DeviceId, session: SessionDep, gateway: GatewayDep, _: AdminDep
) -> OverridesOut:
    """Drop every override: the device goes back to its file, as a new version."""
    device = _device(session, device_id)
    return _change(session, gateway, device, {})
