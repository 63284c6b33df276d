"""Allow-lists: who may open each device's doors, published retained for deciding offline.

``build`` is pure: the policy snapshot in, one ``Allowlist`` per door controller out. The
publisher republishes a device's list when its content changes, when it is half-way to expiry,
and after every reconnect (a broker without persistence forgets retained messages).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiomqtt

from gateway.access import Policy, decide
from varco import protocol
from varco.protocol import Allowlist, Channel, Credential, DoorAllowlist

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Issued:
    site: str
    allowlist: Allowlist
    fingerprint: str


def build(policy: Policy, *, issued_at: datetime, ttl: timedelta) -> dict[str, Issued]:
    """Return, per device with doors, the allow-list the policy implies right now."""
    version = int(issued_at.timestamp() * 1000)
    doors_by_device: dict[str, dict[str, DoorAllowlist]] = {}
    for door in policy.doors.values():
        device = policy.devices.get(door.device) if door.device else None
        if device is None:
            continue
        digests = sorted(
            protocol.credential_digest(device.allowlist_key, credential)
            for credential in _credentials(policy)
            # The same rules as online, so a door offline admits exactly whom it would online.
            if decide(policy, device=device.id, door=door.id, credential=credential).granted
        )
        doors_by_device.setdefault(device.id, {})[door.id] = DoorAllowlist(
            unlock_seconds=door.unlock_seconds, credentials=digests
        )
    issued: dict[str, Issued] = {}
    for device_id, doors in doors_by_device.items():
        device = policy.devices[device_id]
        content = "|".join(
            f"{door}:{entry.unlock_seconds}:{','.join(entry.credentials)}"
            for door, entry in sorted(doors.items())
        )
        allowlist = Allowlist(
            version=version, issued_at=issued_at, expires_at=issued_at + ttl, doors=doors
        )
        fingerprint = hashlib.sha256(content.encode()).hexdigest()
        issued[device_id] = Issued(device.site, allowlist, fingerprint)
    return issued


def _credentials(policy: Policy) -> list[Credential]:
    return [Credential(value=uid) for uid in policy.badges]


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
