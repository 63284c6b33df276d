"""Devices: the Pis at doors and desks; a device's id is its MQTT identity."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import anyio.from_thread
from fastapi import APIRouter, HTTPException, Path, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, computed_field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from gateway.api.deps import AdminDep, GatewayDep, ReaderDep, SessionDep
from gateway.api.fields import Name, found
from gateway.api.pages import Page, PageDep, paginate
from gateway.device_config import Broker, DoorSpec, WiringError, render_config
from gateway.provisioning import (
    BrokerConflictError,
    BrokerUnavailableError,
    Credentials,
    Provisioner,
    ProvisioningError,
    hash_password,
    new_credentials,
)
from gateway.settings import Settings
from gateway.store import dependents
from gateway.store.models import Desk, Device, DeviceKind, Door, new_allowlist_key
from varco.protocol import ID_PATTERN

router = APIRouter(prefix="/devices", tags=["devices"])

T = TypeVar("T")

DeviceId = Annotated[str, Path(pattern=ID_PATTERN, examples=["door-ctl-1"])]

# What the broker's answers mean to an API client; never a 500.
BROKER_ERRORS: dict[int | str, dict[str, Any]] = {
    502: {"description": "The broker refused the change; the detail is its reason"},
    503: {"description": "The broker is unreachable or did not answer; nothing was changed"},
}


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Annotated[str, Field(pattern=ID_PATTERN, examples=["door-ctl-1"])]
    site: Annotated[str, Field(pattern=ID_PATTERN, examples=["milano"])]
    kind: DeviceKind
    name: Annotated[Name, Field(examples=["Front door controller"])] | None = None


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    site: str
    kind: DeviceKind
    name: str
    state: str | None = Field(description="online or offline, from the device's status")
    software: str | None
    last_status_at: datetime | None
    allowlist_version: int | None = Field(description="The allow-list the device holds")
    outbox_depth: int | None = Field(description="Events waiting on the device for the broker")
    revoked_at: datetime | None = Field(description="When the device was revoked")
    created_at: datetime

    @computed_field(description="A revoked device may no longer connect to the broker")  # type: ignore[prop-decorator]
    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class DeviceCreated(DeviceOut):
    allowlist_key: str = Field(
        description=(
            "The key of the device's allow-list digests: put it in the device's configuration "
            "(allowlist_key). Shown only in this answer."
        )
    )
    mqtt_username: str | None = Field(
        description=(
            "The device's broker username: its id. Null when the gateway does not provision "
            "broker identities (VARCO_PROVISIONING=none)."
        )
    )
    mqtt_password: str | None = Field(
        description="The device's broker password. Shown only in this answer; kept hashed."
    )
    config_yaml: str = Field(
        description=(
            "The device's configuration file, with its broker account and allow-list key: "
            "install it as /etc/varco/edge.yaml, owner root, group varco, mode 640 (the agent "
            "runs as varco). With the password only in this answer; GET /devices/{id}/config "
            "gives the file again, with its doors and desks, but not the password."
        )
    )


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=DeviceCreated, responses=BROKER_ERRORS
)
def create_device(
    body: DeviceIn, session: SessionDep, gateway: GatewayDep, _: AdminDep
) -> DeviceCreated:
    """Register a device, give it a broker identity, and return its configuration file."""
    if session.get(Device, body.id) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"device {body.id!r} already exists")
    # End the read before waiting on the broker: no transaction stays open across it.
    session.rollback()
    settings = gateway.settings
    provisioner = Provisioner.from_settings(settings)
    credentials: Credentials | None = None
    if provisioner is not None:
        credentials = new_credentials(body.id, body.site)
        _at_broker(provisioner.provision, credentials)
    device = Device(
        id=body.id,
        site=body.site,
        kind=body.kind,
        name=body.name or "",
        allowlist_key=new_allowlist_key(),
        mqtt_password_hash=hash_password(credentials.password) if credentials else None,
    )
    session.add(device)
    try:
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        # The row is not there, so neither may the broker identity be.
        if provisioner is not None:
            anyio.from_thread.run(provisioner.deprovision, body.id)
        if isinstance(exc, IntegrityError):
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"device {body.id!r} already exists"
            ) from exc
        raise
    gateway.policy_changed()  # the gateway refuses messages from devices it does not know
    # A new device drives no door and watches no desk yet: nothing for the wiring to refuse.
    config = render_config(
        device_id=device.id,
        site=device.site,
        allowlist_key=device.allowlist_key,
        broker=_broker(settings, credentials.username if credentials else None, credentials),
    )
    return DeviceCreated.model_validate(
        {
            **DeviceOut.model_validate(device).model_dump(exclude={"revoked"}),
            "allowlist_key": device.allowlist_key,
            "mqtt_username": credentials.username if credentials else None,
            "mqtt_password": credentials.password if credentials else None,
            "config_yaml": config,
        }
    )


@router.get("", response_model=Page[DeviceOut])
def list_devices(session: SessionDep, page: PageDep, _: ReaderDep) -> Page[DeviceOut]:
    """List devices with their last reported status."""
    return paginate(session, select(Device).order_by(Device.id), page, DeviceOut.model_validate)


@router.get("/{device_id}", response_model=DeviceOut)
def get_device(device_id: DeviceId, session: SessionDep, _: ReaderDep) -> DeviceOut:
    """Show one device with its last reported status."""
    return DeviceOut.model_validate(_get(session, device_id))


@router.get(
    "/{device_id}/config",
    response_class=PlainTextResponse,
    responses={
        200: {
            "content": {"application/yaml": {}},
            "description": "The file to install as /etc/varco/edge.yaml",
        },
        409: {"description": "Revoked, or more doors or desks than the standard wiring has"},
    },
)
def get_device_config(
    device_id: DeviceId, session: SessionDep, gateway: GatewayDep, _: AdminDep
) -> PlainTextResponse:
    """Give the device's whole configuration file, as wired by firmware_config/wiring.md.

    Its doors and desks, their readers and pins, the state folder, the broker and the
    allow-list key: everything but the broker password, which was shown once, when the device
    was created. Admins only (it holds the key).
    """
    device = _get(session, device_id)
    if device.revoked_at is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"device {device_id!r} is revoked")
    doors = session.scalars(select(Door).where(Door.device_id == device_id).order_by(Door.id))
    desks = session.scalars(select(Desk.id).where(Desk.device_id == device_id).order_by(Desk.id))
    # A device the gateway provisioned has a broker account named after it.
    username = device.id if device.mqtt_password_hash is not None else None
    try:
        text = render_config(
            device_id=device.id,
            site=device.site,
            allowlist_key=device.allowlist_key,
            broker=_broker(gateway.settings, username, None),
            doors=[DoorSpec(door.id, door.unlock_seconds) for door in doors],
            desks=list(desks),
        )
    except WiringError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return PlainTextResponse(text, media_type="application/yaml")


@router.post("/{device_id}/revoke", response_model=DeviceOut, responses=BROKER_ERRORS)
def revoke_device(
    device_id: DeviceId, session: SessionDep, gateway: GatewayDep, _: AdminDep
) -> DeviceOut:
    """Revoke a device: the broker disconnects it and refuses it from now on."""
    device = _get(session, device_id)
    if device.revoked_at is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"device {device_id!r} is already revoked")
    provisioner = Provisioner.from_settings(gateway.settings)
    if provisioner is not None:
        # Broker first: if it fails, nothing is marked; disabling twice is harmless on retry.
        _at_broker(provisioner.revoke, device_id)
    device.revoked_at = datetime.now(UTC)
    session.commit()
    gateway.policy_changed()
    return DeviceOut.model_validate(device)


@router.delete("/{device_id}", status_code=status.HTTP_204_NO_CONTENT, responses=BROKER_ERRORS)
def delete_device(
    device_id: DeviceId, session: SessionDep, gateway: GatewayDep, _: AdminDep
) -> None:
    """Delete a device and its broker account; refused (409, naming them) while it drives
    doors or reports desks."""
    revoked = _get(session, device_id).revoked_at is not None
    reason = dependents.device_in_use(session, device_id)
    if reason is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, reason)
    session.rollback()  # no transaction stays open while the broker answers
    provisioner = Provisioner.from_settings(gateway.settings)
    if provisioner is not None:
        # Cut it off first, and be told if that fails (nothing is deleted then); removing
        # the disabled account after is tidying, logged if the broker refuses.
        if not revoked:
            _at_broker(provisioner.revoke, device_id)
        _at_broker(provisioner.deprovision, device_id)
    device = _get(session, device_id)
    session.delete(device)
    session.commit()
    gateway.policy_changed()


def _broker(settings: Settings, username: str | None, credentials: Credentials | None) -> Broker:
    return Broker(
        host=settings.device_broker_host or settings.mqtt_host,
        port=settings.device_broker_port or settings.mqtt_port,
        username=username,
        password=credentials.password if credentials else None,
        tls=settings.device_broker_uses_tls(),
        tls_ca_file=settings.device_broker_tls_ca_file,
    )


def _get(session: SessionDep, device_id: str) -> Device:
    return found(session.get(Device, device_id), f"device {device_id!r}")


def _at_broker(call: Callable[[T], Coroutine[Any, Any, None]], argument: T) -> None:
    # Endpoints run in a worker thread; the broker client runs on the app's event loop.
    try:
        anyio.from_thread.run(call, argument)
    except BrokerConflictError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except BrokerUnavailableError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    except ProvisioningError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, str(exc)) from exc
