"""Allow-lists: who may open each controller's doors, and when, for deciding without us.

``AllowlistBook`` keeps each door controller's list as the doors hold it, and changes it in
proportion to a change of the model: a member's change touches that member's records at each
controller, a plan's change its profile. ``outgoing`` then says what to send: a small update
(``AllowlistDelta``) naming the version it applies to, or the list whole (``Allowlist``,
retained) when a controller has none yet, when the list is half-way to expiry, when the
updates since the last whole list add up to a quarter of it (so that a door that connects gets
a recent one), or when a door says it holds another version than ours (it missed an update).

Each credential carries its profile (what its plan opens at this controller's doors, and at
which hours) and its validity, so a door offline decides as ``decide()`` would, hours included.
Anti-passback needs to know who is inside, which a door alone does not: offline, it is not
enforced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway.access import DeviceRule, DoorRule, Policy
from gateway.store.changes import EVERYTHING, Changes
from varco import protocol, transport
from varco.protocol import (
    Access,
    Allowlist,
    AllowlistDelta,
    Channel,
    CredentialKind,
    DoorSettings,
    Interval,
    PayloadError,
)
from varco.protocol.allowlist import (
    MAX_PROFILES,
    Profile,
    digest_of,
    pack_record,
)

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, bool], Awaitable[None]]

# Updates since the last whole list may add up to this share of it (or this many bytes, for a
# small list); then the list goes whole.
UPDATES_SHARE = 0.25
UPDATES_FLOOR = 16 * 1024
# A door that reports another version than ours gets the list whole at most this often.
RESEND_SECONDS = 5.0
LEADERSHIP_CHECK_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message for one controller: an update, or its list whole (retained)."""

    device: str
    topic: str
    data: bytes
    whole: bool
    version: int


@dataclass(frozen=True, slots=True)
class Issued:
    """A controller's whole list, as ``build`` gives it."""

    site: str
    allowlist: Allowlist


_Terms = tuple[int, datetime | None, datetime | None]  # profile, valid from, valid until


@dataclass(slots=True)
class _Settings:
    site: str
    key: bytes
    timezone: str
    closures: list[Interval]
    doors: dict[str, DoorSettings]
    plan_profiles: dict[str, Profile]  # only plans that open one of its doors
    open_doors: frozenset[str]  # not locked down: a locked-down door lists no one

    @classmethod
    def of(cls, policy: Policy, device: DeviceRule, doors: list[DoorRule]) -> _Settings:
        views = policy.structure.door_views
        site = views[doors[0].id].site
        open_doors = [door for door in doors if not views[door.id].locked_down]
        plan_profiles: dict[str, Profile] = {}
        for plan in policy.plans.values():
            profile = {
                door.id: Access(
                    windows=list(plan.windows_for(door.zone)),
                    closed_on_closures=not plan.open_on_closures,
                )
                for door in open_doors
                if door.zone in plan.zones
            }
            if profile:
                plan_profiles[plan.id] = profile
        return cls(
            site=device.site,
            key=device.allowlist_key,
            timezone=str(site.timezone),
            closures=list(views[doors[0].id].closures),
            doors={
                door.id: DoorSettings(
                    unlock_seconds=door.unlock_seconds,
                    locked_down=views[door.id].locked_down,
                    open_windows=list(door.open_windows),
                    open_after_first_entry=door.open_after_first_entry,
                )
                for door in sorted(doors, key=lambda d: d.id)
            },
            plan_profiles=plan_profiles,
            open_doors=frozenset(door.id for door in open_doors),
        )


@dataclass(slots=True)
class Controller:
    """One door controller's allow-list as the gateway holds it, and what is not sent yet.

    The records themselves are not kept: a whole list is worked out from the policy when it
    goes (at start, half-way to expiry, now and then), and an update from the records a
    change makes differ between the policy before and after it.
    """

    device: str
    settings: _Settings
    profiles: dict[int, Profile] = field(default_factory=dict)
    plan_ids: dict[str, int] = field(default_factory=dict)
    pass_ids: dict[frozenset[str], int] = field(default_factory=dict)
    pending_records: dict[bytes, bytes | None] = field(default_factory=dict)  # None: removed
    pending_profiles: set[int] = field(default_factory=set)
    pending_sections: set[str] = field(default_factory=set)  # timezone, closures, doors
    version: int = 0
    whole_version: int = 0
    whole_bytes: int = 0
    sent_since_whole: int = 0
    whole_at: datetime | None = None
    resent_at: datetime | None = None

    @property
    def pending(self) -> bool:
        return bool(self.pending_records or self.pending_profiles or self.pending_sections)

    def fill(self) -> None:
        """Start the list anew from its settings: it goes whole next."""
        self.profiles.clear()
        self.plan_ids.clear()
        self.pass_ids.clear()
        for plan_id, profile in sorted(self.settings.plan_profiles.items()):
            self.plan_ids[plan_id] = self._new_profile(profile)
        self.pending_records.clear()
        self.pending_profiles.clear()
        self.pending_sections.clear()
        self.whole_at = None

    def restructure(self, settings: _Settings) -> bool:
        """Take new settings; return ``False`` if the list must start anew (``fill``)."""
        old = self.settings
        self.settings = settings
        if settings.key != old.key or settings.open_doors != old.open_doors:
            return False  # passes' profiles follow the doors: work them out anew
        if set(settings.plan_profiles) != set(old.plan_profiles):
            return False  # a plan opens a door here now, or no longer: its members come or go
        for section in ("timezone", "closures", "doors"):
            if getattr(settings, section) != getattr(old, section):
                self.pending_sections.add(section)
        for plan_id, profile in settings.plan_profiles.items():
            profile_id = self.plan_ids[plan_id]
            if self.profiles.get(profile_id) != profile:
                self.profiles[profile_id] = profile
                self.pending_profiles.add(profile_id)
        return True

    def badge(self, before: Policy, after: Policy, uid: str) -> None:
        """Note the change, if any, of badge ``uid``'s record from ``before`` to ``after``."""
        old, new = self._badge_record(before, uid), self._badge_record(after, uid)
        if old != new:
            self.pending_records[self._digest(CredentialKind.BADGE, uid)] = new

    def guest_pass(self, before: Policy, after: Policy, code_hash: str) -> None:
        """Note the change, if any, of the record of the guest pass with ``code_hash``."""
        old, new = self._pass_record(before, code_hash), self._pass_record(after, code_hash)
        if old != new:
            self.pending_records[self._digest(CredentialKind.PASS, code_hash)] = new

    def _digest(self, kind: CredentialKind, value: str) -> bytes:
        return digest_of(self.settings.key, kind, value)

    def _badge_record(self, policy: Policy, uid: str) -> bytes | None:
        badge = policy.badges.get(uid)
        if badge is None or not badge.active:
            return None
        member = policy.members.get(badge.member_id)
        if member is None or not member.active:
            return None
        profile_id = self.plan_ids.get(member.plan)
        if profile_id is None:
            return None  # the plan opens none of this controller's doors
        return pack_record(
            self._digest(CredentialKind.BADGE, uid),
            profile_id,
            member.valid_from,
            member.valid_until,
        )

    def _pass_record(self, policy: Policy, code_hash: str) -> bytes | None:
        guest_pass = policy.passes.get(code_hash)
        if guest_pass is None or guest_pass.revoked:
            return None
        doors = frozenset(guest_pass.doors & self.settings.open_doors)
        if not doors:
            return None
        profile_id = self.pass_ids.get(doors)
        if profile_id is None:
            profile_id = self.pass_ids[doors] = self._new_profile(
                {door: Access() for door in sorted(doors)}
            )
        return pack_record(
            self._digest(CredentialKind.PASS, code_hash),
            profile_id,
            guest_pass.valid_from,
            guest_pass.valid_until,
        )

    def _new_profile(self, profile: Profile) -> int:
        profile_id = max(self.profiles, default=-1) + 1
        if profile_id >= MAX_PROFILES:
            raise PayloadError(f"{self.device}: more than {MAX_PROFILES} access profiles")
        self.profiles[profile_id] = profile
        self.pending_profiles.add(profile_id)
        return profile_id

    def whole(self, policy: Policy, version: int, issued_at: datetime, ttl: timedelta) -> Allowlist:
        """Return the list whole as ``policy`` implies it, at ``version``."""
        settings = self.settings
        records = [self._badge_record(policy, uid) for uid in policy.badges]
        records += [self._pass_record(policy, code_hash) for code_hash in policy.passes]
        return Allowlist(
            version=version,
            issued_at=issued_at,
            expires_at=issued_at + ttl,
            timezone=settings.timezone,
            closures=settings.closures,
            doors=settings.doors,
            profiles={str(k): v for k, v in sorted(self.profiles.items())},
            # A record starts with its digest: sorted records are sorted by digest.
            credentials=b"".join(sorted(r for r in records if r is not None)),
        )

    def delta(self, version: int, issued_at: datetime, ttl: timedelta) -> AllowlistDelta:
        """Return what is not sent yet, as an update from ``self.version`` to ``version``."""
        settings = self.settings
        changed = sorted(self.pending_records.items())
        profiles = sorted(self.pending_profiles)
        return AllowlistDelta(
            since=self.version,
            version=version,
            issued_at=issued_at,
            expires_at=issued_at + ttl,
            timezone=settings.timezone if "timezone" in self.pending_sections else None,
            closures=settings.closures if "closures" in self.pending_sections else None,
            doors=settings.doors if "doors" in self.pending_sections else None,
            profiles={str(k): self.profiles[k] for k in profiles if k in self.profiles},
            removed_profiles=[str(k) for k in profiles if k not in self.profiles],
            credentials=b"".join(record for _, record in changed if record is not None),
            removed=b"".join(digest for digest, record in changed if record is None),
        )

    def sent(self, version: int) -> None:
        self.version = version
        self.pending_records.clear()
        self.pending_profiles.clear()
        self.pending_sections.clear()


class AllowlistBook:
    """Every door controller's allow-list, kept in step with the policy."""

    def __init__(self, ttl: timedelta) -> None:
        self.ttl = ttl
        self.controllers: dict[str, Controller] = {}
        self.policy = Policy()  # what the lists are in line with
        self.refused = 0  # lists that could not be sent (over the size bound)

    def apply(self, before: Policy, after: Policy, changes: Changes) -> None:
        """Bring every list in line with ``after``, doing what ``changes`` calls for."""
        self.policy = after
        if changes.everything or changes.structure:
            self._restructure(after, fill_all=changes.everything)
        uids = set(changes.badges)
        for member in changes.members:
            uids |= before.member_badges.get(member, frozenset())
            uids |= after.member_badges.get(member, frozenset())
        passes = set()
        if changes.passes and not changes.everything:
            passes = {
                c
                for c in before.passes.keys() | after.passes.keys()
                if before.passes.get(c) != after.passes.get(c)
            }
        for controller in self.controllers.values():
            for uid in uids:
                controller.badge(before, after, uid)
            for code_hash in passes:
                controller.guest_pass(before, after, code_hash)

    def _restructure(self, policy: Policy, *, fill_all: bool) -> None:
        doors_of: dict[str, list[DoorRule]] = {}
        for door in policy.doors.values():
            if door.device is not None and door.device in policy.devices:
                doors_of.setdefault(door.device, []).append(door)
        for device_id in set(self.controllers) - set(doors_of):
            del self.controllers[device_id]  # revoked, or its doors moved away
        for device_id, doors in sorted(doors_of.items()):
            settings = _Settings.of(policy, policy.devices[device_id], doors)
            controller = self.controllers.get(device_id)
            if controller is None:
                controller = self.controllers[device_id] = Controller(device_id, settings)
                controller.fill()
            elif fill_all or not controller.restructure(settings):
                controller.fill()

    def resend(self, device: str, version: int | None, now: datetime) -> bool:
        """Note that ``device`` holds ``version``; return if it must get its list whole."""
        controller = self.controllers.get(device)
        if controller is None or version == controller.version:
            return False
        if not controller.pending and controller.version == controller.whole_version:
            return False  # the retained list is the newest: the broker gives it to the door
        if controller.resent_at is not None and (
            (now - controller.resent_at).total_seconds() < RESEND_SECONDS
        ):
            return False
        controller.resent_at = now
        controller.whole_at = None
        return True

    def outgoing(self, now: datetime) -> list[Outgoing]:
        """Return the messages that bring every door up to date, and note them sent."""
        messages = []
        for controller in self.controllers.values():
            whole_due = controller.whole_at is None or now - controller.whole_at >= self.ttl / 2
            if not whole_due and not controller.pending:
                continue
            version = max(controller.version + 1, int(now.timestamp() * 1000))
            data = b""
            if not whole_due:
                data = protocol.encode(controller.delta(version, now, self.ttl))
                whole_due = controller.sent_since_whole + len(data) > max(
                    controller.whole_bytes * UPDATES_SHARE, UPDATES_FLOOR
                )
            if whole_due:
                try:
                    whole = controller.whole(self.policy, version, now, self.ttl)
                    data = protocol.encode(whole)
                except PayloadError as exc:
                    self.refused += 1
                    log.error("allow-list for %s cannot be sent: %s", controller.device, exc)
                    continue
                controller.whole_version = version
                controller.whole_bytes = len(data)
                controller.sent_since_whole = 0
                controller.whole_at = now
            else:
                controller.sent_since_whole += len(data)
            controller.sent(version)
            topic = protocol.topic(controller.settings.site, controller.device, Channel.ALLOWLIST)
            messages.append(Outgoing(controller.device, topic, data, whole_due, version))
        return messages


def build(policy: Policy, *, issued_at: datetime, ttl: timedelta) -> dict[str, Issued]:
    """Return, per device with doors, its whole allow-list as ``policy`` implies it."""
    book = AllowlistBook(ttl)
    book.apply(Policy(), policy, EVERYTHING)
    version = int(issued_at.timestamp() * 1000)
    return {
        device: Issued(c.settings.site, c.whole(policy, version, issued_at, ttl))
        for device, c in sorted(book.controllers.items())
    }


class AllowlistPublisher:
    """Keeps every door controller's allow-list current, off the loop that answers taps.

    The book's work (records, encoding) runs in a worker thread; only the publishing is on the
    event loop.
    """

    def __init__(
        self, publish: Publish, *, ttl: timedelta, leads: Callable[[], bool] = lambda: True
    ) -> None:
        self._publish = publish
        self._leads = leads
        self._leading = False
        self.book = AllowlistBook(ttl)
        self._policy = Policy()
        self._queued: list[tuple[Policy, Changes]] = []
        self._behind: dict[str, int | None] = {}
        self._all_whole = False
        self._wake = asyncio.Event()
        self.published = 0
        self.published_bytes = 0

    def changed(self, policy: Policy, changes: Changes) -> None:
        """Note that the model changed to ``policy``; call from the event loop."""
        self._queued.append((policy, changes))
        self._wake.set()

    def reconnected(self) -> None:
        """Send every list whole: the broker may have lost its retained messages."""
        if self.published:  # before the first list went out, every list is due whole anyway
            self._all_whole = True
            self._wake.set()

    def reported(self, device: str, version: int | None) -> None:
        """Note the allow-list version a device says it holds (its status)."""
        self._behind[device] = version
        self._wake.set()

    async def run(self) -> None:
        """Publish what changed whenever woken, and lists due again, until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._check_seconds())
            self._wake.clear()
            queued, self._queued = self._queued, []
            behind, self._behind = self._behind, {}
            all_whole, self._all_whole = self._all_whole, False
            try:
                messages = await asyncio.to_thread(
                    self._work, queued, behind, all_whole, protocol.utcnow()
                )
                await self._send(messages)
            except transport.BrokerUnavailableError as exc:
                # Sent again whole as soon as the ingest reconnects (see ``reconnected``).
                self._all_whole = True
                log.info("allow-lists not published yet: %s", exc)
            except Exception:
                log.exception("allow-lists not published; retrying on the next change")

    def _check_seconds(self) -> float:
        # Also how soon a replica takes over publishing from one that died.
        return min(self.book.ttl.total_seconds() / 8, LEADERSHIP_CHECK_SECONDS)

    def _work(
        self,
        queued: list[tuple[Policy, Changes]],
        behind: dict[str, int | None],
        all_whole: bool,
        now: datetime,
    ) -> list[Outgoing]:
        for policy, changes in queued:
            self.book.apply(self._policy, policy, changes)
            self._policy = policy
        was_leading, self._leading = self._leading, self._leads()
        if not self._leading:
            return []  # another replica publishes; the book stays ready to take over
        if all_whole or not was_leading:
            # Just took over (the doors hold another book's versions), or the broker is new.
            for controller in self.book.controllers.values():
                controller.whole_at = None
        for device, version in behind.items():
            if self.book.resend(device, version, now):
                log.info(
                    "door controller %s holds allow-list %s: sending it whole", device, version
                )
        return self.book.outgoing(now)

    async def _send(self, messages: Iterable[Outgoing]) -> None:
        sent = whole = 0
        for message in messages:
            await self._publish(message.topic, message.data, message.whole)
            sent += 1
            whole += message.whole
            self.published_bytes += len(message.data)
        self.published += sent
        if sent:
            log.info("published %d allow-list(s), %d whole", sent, whole)
