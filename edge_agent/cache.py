"""The offline allow-list: the last list the gateway published, kept on disk, with its expiry.

A door asks it only when the gateway does not answer in time. With no list, or one past its
``expires_at``, the door's fail mode decides (fail-secure stays locked, fail-safe opens).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from varco import protocol
from varco.protocol import Allowlist, Credential, PayloadError, Reason, refusal_reason

log = logging.getLogger(__name__)

FailMode = Literal["secure", "safe"]


@dataclass(frozen=True, slots=True)
class OfflineVerdict:
    granted: bool
    reason: Reason
    unlock_seconds: float
    allowlist_version: int | None


class AllowlistCache:
    """Holds the newest valid allow-list, in memory and in ``path``."""

    def __init__(
        self,
        path: Path,
        key: bytes | None,
        *,
        clock: Callable[[], datetime] = protocol.utcnow,
    ) -> None:
        self._path = path
        self._key = key
        self.clock = clock  # what "now" is when checking expiry; tests move it forward
        self._current: Allowlist | None = None
        self._zone: tzinfo = UTC
        self.rejected = 0
        self._load()

    @property
    def current(self) -> Allowlist | None:
        return self._current

    @property
    def zone(self) -> tzinfo:
        """The site's time zone, as the newest allow-list names it."""
        return self._zone

    def valid(self) -> Allowlist | None:
        """Return the newest allow-list if it has not expired, else ``None``."""
        allowlist = self._current
        if allowlist is None or self.clock() >= allowlist.expires_at:
            return None
        return allowlist

    def update(self, raw: bytes) -> bool:
        """Take a published list if it is valid and newer; keep it on disk. Return if taken."""
        try:
            allowlist = protocol.decode_as(Allowlist, raw, limit=protocol.MAX_ALLOWLIST_BYTES)
        except PayloadError as exc:
            self.rejected += 1
            log.warning("allow-list refused: %s", exc)
            return False
        if self._current is not None and allowlist.version <= self._current.version:
            return False
        _write_atomically(self._path, raw)
        self._use(allowlist)
        log.info(
            "allow-list version %d taken (expires %s)",
            allowlist.version,
            allowlist.expires_at.isoformat(),
        )
        return True

    def decide(
        self, door: str, credential: Credential, *, fail_mode: FailMode, unlock_seconds: float
    ) -> OfflineVerdict:
        """Decide without the gateway, from the list if it is still valid, else by fail mode."""
        allowlist = self._current
        if allowlist is None or self._key is None or self.clock() >= allowlist.expires_at:
            version = allowlist.version if allowlist else None
            if fail_mode == "safe":
                return OfflineVerdict(True, Reason.FAIL_SAFE, unlock_seconds, version)
            return OfflineVerdict(False, Reason.NO_ALLOWLIST, 0.0, version)
        entry = allowlist.doors.get(door)
        version = allowlist.version
        if entry is not None and entry.locked_down:
            return OfflineVerdict(False, Reason.LOCKDOWN, 0.0, version)
        schedule_id = (
            entry.credentials.get(protocol.credential_digest(self._key, credential))
            if entry is not None
            else None
        )
        schedule = allowlist.schedules.get(schedule_id) if schedule_id is not None else None
        if entry is None or schedule is None:
            return OfflineVerdict(False, Reason.NOT_IN_ALLOWLIST, 0.0, version)
        refusal = schedule.check(self.clock(), self._zone, allowlist.closures)
        if refusal is not None:
            return OfflineVerdict(False, refusal_reason(refusal, credential.kind), 0.0, version)
        return OfflineVerdict(True, Reason.GRANTED, entry.unlock_seconds, version)

    def _use(self, allowlist: Allowlist) -> None:
        try:
            self._zone = ZoneInfo(allowlist.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            log.error("allow-list time zone %r unknown here; using UTC", allowlist.timezone)
            self._zone = UTC
        self._current = allowlist

    def _load(self) -> None:
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError:
            return
        try:
            self._use(protocol.decode_as(Allowlist, raw, limit=protocol.MAX_ALLOWLIST_BYTES))
        except PayloadError as exc:
            # A damaged file is worth a warning, not a crash: the gateway will send a new one.
            log.warning("cached allow-list %s ignored: %s", self._path, exc)


def _write_atomically(path: Path, data: bytes) -> None:
    # Write, flush to the card, then rename: a power cut leaves the old list or the new one.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    tmp.replace(path)
