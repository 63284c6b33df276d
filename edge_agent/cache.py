"""The offline allow-list: the list the gateway published, with its updates, kept on disk.

A door asks it only when the gateway does not answer in time. With no list, or one past its
``expires_at``, the door's fail mode decides (fail-secure stays locked, fail-safe opens).

The gateway sends the list whole once, then small updates, each naming the version it applies
to. An update for another version means one was missed: the cache keeps what it has, says so
(``on_gap``, which makes the link report its version), and the gateway sends the list whole.

On disk: the last whole list as it came (``path``) and the updates taken since, appended to a
journal beside it (``<path>.updates``), each fsynced: an update costs a few hundred bytes
written, not the whole list. A whole list replaces both.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from varco import protocol
from varco.protocol import (
    RECORD,
    Allowlist,
    AllowlistDelta,
    Credential,
    DoorSettings,
    Interval,
    PayloadError,
    Reason,
    refusal_reason,
)
from varco.protocol.allowlist import (
    DIGEST_BYTES,
    NO_END,
    NO_START,
    AllowlistMessage,
    Profile,
    bisect_records,
    check_records,
    from_micros,
)
from varco.protocol.schedule import refusal

log = logging.getLogger(__name__)

FailMode = Literal["secure", "safe"]
_FRAME = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class OfflineVerdict:
    granted: bool
    reason: Reason
    unlock_seconds: float
    allowlist_version: int | None


@dataclass(slots=True)
class HeldList:
    """The allow-list a door holds now: the last whole list with every update since applied."""

    version: int
    issued_at: datetime
    expires_at: datetime
    timezone: str
    closures: list[Interval]
    doors: dict[str, DoorSettings]
    profiles: dict[int, Profile]
    records: bytearray = field(repr=False)

    @property
    def credentials(self) -> int:
        """How many credentials the list holds."""
        return len(self.records) // RECORD.size

    @classmethod
    def of(cls, allowlist: Allowlist) -> HeldList:
        """Hold a whole list; raise ``PayloadError`` if its records are not well formed."""
        problem = check_records(allowlist.credentials, unique_sorted=True)
        if problem is not None:
            raise PayloadError(problem)
        return cls(
            version=allowlist.version,
            issued_at=allowlist.issued_at,
            expires_at=allowlist.expires_at,
            timezone=allowlist.timezone,
            closures=list(allowlist.closures),
            doors=dict(allowlist.doors),
            profiles={int(k): v for k, v in allowlist.profiles.items()},
            records=bytearray(allowlist.credentials),
        )

    def apply(self, delta: AllowlistDelta) -> None:
        """Apply an update made for this version; raise ``PayloadError`` if it is malformed."""
        problem = check_records(delta.credentials, unique_sorted=False)
        if problem is None and len(delta.removed) % DIGEST_BYTES:
            problem = "removed: not a whole number of digests"
        if problem is not None:
            raise PayloadError(problem)
        records = self.records
        for start in range(0, len(delta.removed), DIGEST_BYTES):
            offset, found = bisect_records(records, delta.removed[start : start + DIGEST_BYTES])
            if found:
                del records[offset : offset + RECORD.size]
        for start in range(0, len(delta.credentials), RECORD.size):
            record = delta.credentials[start : start + RECORD.size]
            offset, found = bisect_records(records, record[:DIGEST_BYTES])
            records[offset : offset + RECORD.size if found else offset] = record
        for profile_id in delta.removed_profiles:
            self.profiles.pop(int(profile_id), None)
        self.profiles.update({int(k): v for k, v in delta.profiles.items()})
        if delta.timezone is not None:
            self.timezone = delta.timezone
        if delta.closures is not None:
            self.closures = list(delta.closures)
        if delta.doors is not None:
            self.doors = dict(delta.doors)
        self.version = delta.version
        self.issued_at = delta.issued_at
        self.expires_at = delta.expires_at

    def lookup(self, digest: bytes) -> tuple[int, int, int] | None:
        """Return ``(profile, valid_from, valid_until)`` of a credential's record, if any."""
        offset, found = bisect_records(self.records, digest)
        if not found:
            return None
        _, profile, valid_from, valid_until = RECORD.unpack_from(self.records, offset)
        return profile, valid_from, valid_until


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
        self._journal = path.with_name(path.name + ".updates")
        self._key = key
        self.clock = clock  # what "now" is when checking expiry; tests move it forward
        self._current: HeldList | None = None
        self._zone: tzinfo = UTC
        self.rejected = 0
        self.gaps = 0
        # Called when an update shows that one was missed: the gateway must send the list whole.
        self.on_gap: Callable[[], None] | None = None
        self._load()

    @property
    def current(self) -> HeldList | None:
        return self._current

    @property
    def zone(self) -> tzinfo:
        """The site's time zone, as the newest allow-list names it."""
        return self._zone

    def valid(self) -> HeldList | None:
        """Return the allow-list held if it has not expired, else ``None``."""
        held = self._current
        if held is None or self.clock() >= held.expires_at:
            return None
        return held

    def update(self, raw: bytes) -> bool:
        """Take a whole list or an update, if valid and newer; keep it on disk. Return if taken."""
        try:
            message: AllowlistMessage = protocol.decode(protocol.Channel.ALLOWLIST, raw)  # type: ignore[assignment]
            if isinstance(message, Allowlist):
                return self._take_whole(message, raw)
            return self._take_update(message, raw)
        except PayloadError as exc:
            self.rejected += 1
            log.warning("allow-list refused: %s", exc)
            return False

    def _take_whole(self, allowlist: Allowlist, raw: bytes) -> bool:
        if self._current is not None and allowlist.version <= self._current.version:
            return False
        held = HeldList.of(allowlist)
        _write_atomically(self._path, raw)
        self._journal.unlink(missing_ok=True)
        self._use(held)
        log.info(
            "allow-list version %d taken: %d credentials (expires %s)",
            held.version,
            held.credentials,
            held.expires_at.isoformat(),
        )
        return True

    def _take_update(self, delta: AllowlistDelta, raw: bytes) -> bool:
        held = self._current
        if held is not None and delta.version <= held.version:
            return False  # already have it (a redelivery), or older
        if held is None or delta.since != held.version:
            self.gaps += 1
            log.warning(
                "allow-list update %d is for version %d, and this door holds %s: asking for "
                "the whole list",
                delta.version,
                delta.since,
                held.version if held else "none",
            )
            if self.on_gap is not None:
                self.on_gap()
            return False
        held.apply(delta)
        _append(self._journal, raw)
        self._use(held)
        log.info("allow-list version %d taken (an update)", held.version)
        return True

    def decide(
        self, door: str, credential: Credential, *, fail_mode: FailMode, unlock_seconds: float
    ) -> OfflineVerdict:
        """Decide without the gateway, from the list if it is still valid, else by fail mode."""
        held = self._current
        now = self.clock()
        if held is None or self._key is None or now >= held.expires_at:
            version = held.version if held else None
            if fail_mode == "safe":
                return OfflineVerdict(True, Reason.FAIL_SAFE, unlock_seconds, version)
            return OfflineVerdict(False, Reason.NO_ALLOWLIST, 0.0, version)
        settings = held.doors.get(door)
        version = held.version
        if settings is not None and settings.locked_down:
            return OfflineVerdict(False, Reason.LOCKDOWN, 0.0, version)
        record = held.lookup(protocol.credential_digest(self._key, credential))
        access = None
        if settings is not None and record is not None:
            access = held.profiles.get(record[0], {}).get(door)
        if settings is None or record is None or access is None:
            return OfflineVerdict(False, Reason.NOT_IN_ALLOWLIST, 0.0, version)
        why = refusal(
            now,
            self._zone,
            held.closures,
            windows=access.windows,
            valid_from=from_micros(record[1], NO_START),
            valid_until=from_micros(record[2], NO_END),
            closed_on_closures=access.closed_on_closures,
        )
        if why is not None:
            return OfflineVerdict(False, refusal_reason(why, credential.kind), 0.0, version)
        return OfflineVerdict(True, Reason.GRANTED, settings.unlock_seconds, version)

    def _use(self, held: HeldList) -> None:
        try:
            self._zone = ZoneInfo(held.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            log.error("allow-list time zone %r unknown here; using UTC", held.timezone)
            self._zone = UTC
        self._current = held

    def _load(self) -> None:
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError:
            return
        try:
            whole = protocol.decode(protocol.Channel.ALLOWLIST, raw)
            if not isinstance(whole, Allowlist):
                raise PayloadError("not a whole allow-list")
            held = HeldList.of(whole)
        except PayloadError as exc:
            # A damaged file is worth a warning, not a crash: the gateway will send a new one.
            log.warning("cached allow-list %s ignored: %s", self._path, exc)
            return
        for raw_update in _read_journal(self._journal):
            try:
                delta = protocol.decode(protocol.Channel.ALLOWLIST, raw_update)
                if not isinstance(delta, AllowlistDelta) or delta.since != held.version:
                    break
                held.apply(delta)
            except PayloadError as exc:
                log.warning(
                    "allow-list journal %s: stopped at a bad update: %s", self._journal, exc
                )
                break
        self._use(held)


def _write_atomically(path: Path, data: bytes) -> None:
    # Write, flush to the card, then rename: a power cut leaves the old list or the new one.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    tmp.replace(path)


def _append(journal: Path, data: bytes) -> None:
    # Length-prefixed, so that a frame cut short by a power cut is seen and ignored on load.
    with journal.open("ab") as file:
        file.write(_FRAME.pack(len(data)) + data)
        file.flush()
        os.fsync(file.fileno())


def _read_journal(journal: Path) -> list[bytes]:
    try:
        data = journal.read_bytes()
    except FileNotFoundError:
        return []
    frames, offset = [], 0
    while offset + _FRAME.size <= len(data):
        (size,) = _FRAME.unpack_from(data, offset)
        end = offset + _FRAME.size + size
        if end > len(data):
            break  # torn by a power cut: what came before it stands
        frames.append(data[offset + _FRAME.size : end])
        offset = end
    return frames
