"""Allow-lists: who may open each device's doors, and when, published retained for offline use.

``build`` is pure: the policy snapshot in, one ``Allowlist`` per door controller out. Each
credential carries the schedule (windows, validity, closures) that says when it opens the door,
so a door offline decides as the gateway would, hours included. Anti-passback needs to know who
is inside, which a door alone does not: offline, it is not enforced.

The publisher republishes a device's list when its content changes, when it is half-way to
expiry, and after every reconnect (a broker without persistence forgets retained messages).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiomqtt
import msgspec

from gateway.access import DoorRule, Policy
from varco import protocol
from varco.protocol import Allowlist, Channel, Credential, DoorAllowlist, Schedule

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Issued:
    site: str
    allowlist: Allowlist
    fingerprint: str


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Schedules:
    """Gives each distinct schedule a short id, the same id for the same schedule."""

    def __init__(self) -> None:
        self.by_id: dict[str, Schedule] = {}
        self._ids: dict[bytes, str] = {}

    def id_of(self, schedule: Schedule) -> str:
        key = msgspec.json.encode(schedule)
        if key not in self._ids:
            self._ids[key] = f"s{len(self._ids)}"
            self.by_id[self._ids[key]] = schedule
        return self._ids[key]


def build(policy: Policy, *, issued_at: datetime, ttl: timedelta) -> dict[str, Issued]:
    """Return, per device with doors, the allow-list the policy implies."""
    version = int(issued_at.timestamp() * 1000)
    doors_by_device: dict[str, list[DoorRule]] = {}
    for door in policy.doors.values():
        if door.device is not None and door.device in policy.devices:
            doors_by_device.setdefault(door.device, []).append(door)
    issued: dict[str, Issued] = {}
    for device_id, doors in sorted(doors_by_device.items()):
        device = policy.devices[device_id]
        site = policy.site_of(doors[0])
        schedules = _Schedules()
        entries = {
            door.id: _door_entry(policy, door, device.allowlist_key, schedules)
            for door in sorted(doors, key=lambda d: d.id)
        }
        # Version and times are left out of the fingerprint: only a change of content republishes.
        content = Allowlist(
            version=0,
            issued_at=_EPOCH,
            expires_at=_EPOCH,
            timezone=str(site.timezone),
            closures=policy.closures_at(site.id),
            schedules=schedules.by_id,
            doors=entries,
        )
        fingerprint = hashlib.sha256(msgspec.json.encode(content)).hexdigest()
        allowlist = msgspec.structs.replace(
            content, version=version, issued_at=issued_at, expires_at=issued_at + ttl
        )
        issued[device_id] = Issued(device.site, allowlist, fingerprint)
    return issued


def _door_entry(policy: Policy, door: DoorRule, key: bytes, schedules: _Schedules) -> DoorAllowlist:
    if policy.is_locked_down(door):
        return DoorAllowlist(unlock_seconds=door.unlock_seconds, locked_down=True, credentials={})
    credentials: dict[str, str] = {}
    # Sorted, so that the same content always numbers its schedules the same way.
    for badge in sorted(policy.badges.values(), key=lambda b: b.uid):
        member = policy.members.get(badge.member_id)
        if member is None or not badge.active or not member.active:
            continue
        schedule = policy.member_schedule(member, door.zone)
        if schedule is not None:
            digest = protocol.credential_digest(key, Credential(value=badge.uid))
            credentials[digest] = schedules.id_of(schedule)
    for guest_pass in sorted(policy.passes.values(), key=lambda p: p.code_hash):
        schedule = policy.pass_schedule(guest_pass, door.id)
        if schedule is not None:
            digest = protocol.pass_digest(key, guest_pass.code_hash)
            credentials[digest] = schedules.id_of(schedule)
    return DoorAllowlist(
        unlock_seconds=door.unlock_seconds,
        open_windows=list(door.open_windows),
        open_after_first_entry=door.open_after_first_entry,
        credentials=dict(sorted(credentials.items())),
    )


class AllowlistPublisher:
    """Keeps every door controller's retained allow-list current."""

    def __init__(self, policy: Callable[[], Policy], publish: Publish, *, ttl: timedelta) -> None:
        self._policy = policy
        self._publish = publish
        self._ttl = ttl
        self._published: dict[str, Issued] = {}
        self._wake = asyncio.Event()
        self.published = 0

    def changed(self) -> None:
        """Note that the model changed; call from the event loop."""
        self._wake.set()

    def reconnected(self) -> None:
        """Republish everything: the broker may have lost its retained messages."""
        self._published.clear()
        self._wake.set()

    async def run(self) -> None:
        """Publish what changed, whenever woken and at least every quarter of the lifetime."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._ttl.total_seconds() / 4)
            self._wake.clear()
            try:
                await self.publish_due(protocol.utcnow())
            except aiomqtt.MqttError as exc:
                # Published again as soon as the ingest reconnects (see ``reconnected``).
                log.info("allow-lists not published yet: %s", exc)
            except Exception:
                log.exception("allow-lists not published; retrying on the next change")

    async def publish_due(self, now: datetime) -> int:
        """Publish the lists whose content changed or that are half-way to expiry."""
        sent = 0
        for device_id, issued in build(self._policy(), issued_at=now, ttl=self._ttl).items():
            previous = self._published.get(device_id)
            if (
                previous is not None
                and previous.fingerprint == issued.fingerprint
                and now - previous.allowlist.issued_at < self._ttl / 2
            ):
                continue
            topic = protocol.topic(issued.site, device_id, Channel.ALLOWLIST)
            await self._publish(topic, protocol.encode(issued.allowlist))
            self._published[device_id] = issued
            sent += 1
        self.published += sent
        if sent:
            log.info("published %d allow-list(s)", sent)
        return sent
