"""Remote configuration: what the API overrides of each device's own file (the whole file is
``gateway.device_config``'s), sent retained on the device's ``config`` channel, and what the
device says it runs.

The file on the Pi stays the base; the gateway keeps only the overrides, with a version that
only grows (the time in milliseconds, or one more than the last), so a device never takes an
older config for a newer one. Each is published retained when it changes and again whenever
the gateway reconnects, in case the broker lost its retained messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.store import Store
from gateway.store.models import Device, DeviceOverrides
from varco import protocol, transport
from varco.protocol import Channel, DeviceConfig, DoorOverrides, Status

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], Awaitable[None]]


def next_version(previous: int | None, now: datetime) -> int:
    """Return a version above ``previous``: the time in milliseconds, if that is above it."""
    return max((previous or 0) + 1, int(now.timestamp() * 1000))


def payload_of(record: DeviceOverrides) -> DeviceConfig:
    """Build the ``config`` payload of ``record``."""
    overrides = record.overrides or {}
    return DeviceConfig(
        version=record.version,
        issued_at=record.updated_at,
        log_level=overrides.get("log_level"),
        doors={
            door: msgspec.convert(values, DoorOverrides)
            for door, values in (overrides.get("doors") or {}).items()
        },
    )


def set_overrides(session: Session, device_id: str, overrides: dict[str, Any]) -> DeviceOverrides:
    """Make ``overrides`` the device's, as a new version; the caller commits."""
    now = datetime.now(UTC)
    record = session.get(DeviceOverrides, device_id)
    if record is None:
        record = DeviceOverrides(device_id=device_id, version=next_version(None, now))
        session.add(record)
    else:
        record.version = next_version(record.version, now)
    record.overrides = overrides
    record.updated_at = now
    return record


def record_report(
    session: Session, device_id: str, version: int | None, error: str | None, at: datetime
) -> None:
    """Keep what a device's status says of its config: the version it runs, and any refusal."""
    record = session.get(DeviceOverrides, device_id)
    if record is None:
        return
    record.applied_version = version
    record.error = error
    record.reported_at = at


class DeviceConfigs:
    """Publishes configs retained and keeps the devices' reports; runs on the gateway's loop."""

    def __init__(self, store: Store, publish: Publish) -> None:
        self._store = store
        self._publish = publish
        self._work: set[asyncio.Task[None]] = set()

    async def send(self, site: str, device_id: str, payload: DeviceConfig) -> None:
        """Publish ``payload`` retained on the device's config channel."""
        await self._publish(
            protocol.topic(site, device_id, Channel.CONFIG), protocol.encode(payload)
        )

    def reconnected(self) -> None:
        """Send every config again (the broker may have lost its retained messages)."""
        self._spawn(self._send_all())

    def reported(self, device_id: str, status: Status) -> None:
        """Note what a device's status says of its config."""
        if status.config_version is None and status.config_error is None:
            return
        self._spawn(
            asyncio.to_thread(
                self._record, device_id, status.config_version, status.config_error, status.at
            )
        )

    def _record(self, device_id: str, version: int | None, error: str | None, at: datetime) -> None:
        with self._store.session() as session:
            record_report(session, device_id, version, error, at)

    async def _send_all(self) -> None:
        def read() -> list[tuple[str, str, DeviceConfig]]:
            with self._store.session() as session:
                rows = session.execute(
                    select(Device.site, Device.id, DeviceOverrides)
                    .join(DeviceOverrides, DeviceOverrides.device_id == Device.id)
                    .where(Device.revoked_at.is_(None))
                )
                return [(site, device, payload_of(record)) for site, device, record in rows]

        for site, device, payload in await asyncio.to_thread(read):
            await self.send(site, device, payload)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._work.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._work.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, transport.BrokerUnavailableError):
            log.info("device configs not sent yet: %s; sent again on reconnect", error)
        elif error is not None:
            log.error("device configs: %s", error, exc_info=error)
