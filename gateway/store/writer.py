"""The event writer: queues event records off the decision path and commits them in batches.

Each record carries a callback run once its batch is committed; the ingest loop uses it to
acknowledge the MQTT message only then, so a crash before the commit means the broker
redelivers, never that an event is lost. The queue needs no bound of its own: unacknowledged
QoS 1 messages are capped by the broker's in-flight window, which is the back-pressure.

Only a fault of the database itself (a lost connection, a locked file, a timeout) is retried:
the record will go in once the database is back. A record the database or this code cannot
write (a time outside the calendar, a value out of range) never will: it is set aside in
``set_aside_records`` with its reason, its message acknowledged, and the records behind it go
on. Retrying it would hold every acknowledgement behind it, and with them the broker's
in-flight window: every door would stop getting answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session

from gateway.store import Store
from gateway.store.records import (
    access_outcomes,
    insert_new,
    record_device_status,
    record_door_state,
    record_offline_taps,
    redacted,
    set_aside,
)

log = logging.getLogger(__name__)

RecordKind = Literal["access", "door", "desk", "status"]

# /healthz says degraded once the writer has held work this long without committing any.
STALL_SECONDS = 30.0
# How long the writer waits for more records after the first before it commits them.
LINGER_SECONDS = 0.01


def is_database_fault(exc: BaseException) -> bool:
    """Tell a fault of the database itself (worth retrying) from a record it cannot take."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


@dataclass(frozen=True, slots=True)
class Record:
    kind: RecordKind
    row: dict[str, Any]
    on_committed: Callable[[bool], None] | None = None
    """Called after the commit with ``True`` if the row was new, ``False`` if a duplicate."""


class EventWriter:
    """Batches records into transactions on a worker thread; retries until the store answers."""

    def __init__(
        self,
        store: Store,
        *,
        max_batch: int = 500,
        max_backoff: float = 10.0,
        linger: float = LINGER_SECONDS,
    ) -> None:
        self._store = store
        self._queue: asyncio.Queue[Record] = asyncio.Queue()
        self._max_batch = max_batch
        self._linger = linger
        self._max_backoff = max_backoff
        self.committed = 0
        self.duplicates = 0
        self.failures = 0
        self.set_aside = 0
        self.stall_seconds = STALL_SECONDS
        self._in_hand = 0  # taken from the queue, not yet settled
        # Called on the event loop with the stored outcome of each tap of a committed batch
        # (new or not), before any of its records is acknowledged: the recorder's points
        # come from what SQL holds, and are on disk before the edge may forget the event.
        self.on_access_committed: Callable[[list[dict[str, Any]]], None] | None = None
        self._progress_at = time.monotonic()

    @property
    def depth(self) -> int:
        """Records waiting to be committed."""
        return self._queue.qsize() + self._in_hand

    @property
    def stalled(self) -> bool:
        """Tell whether records wait and none has been settled for ``stall_seconds``."""
        return self.depth > 0 and time.monotonic() - self._progress_at > self.stall_seconds

    def counters(self) -> dict[str, int]:
        """Return what the writer did so far, for /healthz."""
        return {
            "committed": self.committed,
            "duplicates": self.duplicates,
            "set_aside": self.set_aside,
            "database_faults": self.failures,
        }

    def submit(self, record: Record) -> None:
        """Queue ``record``; never blocks the caller."""
        self._queue.put_nowait(record)

    async def join(self) -> None:
        """Wait until every record submitted so far is committed."""
        await self._queue.join()

    async def run(self) -> None:
        """Commit queued records until cancelled."""
        while True:
            batch = [await self._queue.get()]
            if self._linger and self._queue.qsize() < self._max_batch:
                # A few ms for the records behind this one: one transaction for several taps
                # costs about what one costs, and the decisions go out before the commit takes
                # the interpreter.
                await asyncio.sleep(self._linger)
            if self._in_hand == 0:
                self._progress_at = time.monotonic()  # idle until now: the clock starts here
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._in_hand = len(batch)
            try:
                await self._commit(batch)
            finally:
                self._in_hand = 0
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[Record]) -> None:
        backoff = 0.1
        while True:
            try:
                new_ids, outcomes = await asyncio.to_thread(self._write, batch)
            except Exception as exc:
                if not is_database_fault(exc):
                    await self._refuse(batch, exc)
                    return
                self.failures += 1
                log.error(
                    "could not commit %d event records (%s); retrying in %.1fs",
                    len(batch),
                    type(exc).__name__,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
            else:
                self._settle(batch, new_ids, outcomes)
                return

    async def _refuse(self, batch: list[Record], error: Exception) -> None:
        """Set aside a record that cannot be stored, say why, and go on with the others."""
        if len(batch) > 1:  # one bad row must not block the rows behind it: isolate it
            for record in batch:
                await self._commit([record])
            return
        [record] = batch
        reason = _reason(error)
        backoff = 0.1
        while True:
            try:
                await asyncio.to_thread(self._set_aside, record, reason)
                break
            except Exception as exc:
                if not is_database_fault(exc):
                    log.exception("could not set aside a %s record either", record.kind)
                    break
                await asyncio.sleep(backoff)  # the database is away: keep it until it is back
                backoff = min(backoff * 2, self._max_backoff)
        self.set_aside += 1
        self._progress_at = time.monotonic()
        # Redacted: a badge UID or a pass code must never reach a log line.
        log.error(
            "event record set aside: %s: %s: %s",
            record.kind,
            reason,
            redacted(record.row),
            # SQLAlchemy's own message lists the statement's parameters, the credential too.
            exc_info=None if isinstance(error, SQLAlchemyError) else error,
        )
        self._acknowledge(record, is_new=False)

    def _set_aside(self, record: Record, reason: str) -> None:
        with self._store.session() as session:
            set_aside(session, record.kind, record.row, reason)

    def _settle(
        self, batch: list[Record], new_ids: set[str], outcomes: list[dict[str, Any]]
    ) -> None:
        self._progress_at = time.monotonic()
        if outcomes and self.on_access_committed is not None:
            try:
                self.on_access_committed(outcomes)
            except Exception:
                # Stored in SQL all the same; the points are the recorder's to lose, not ours.
                log.exception("the committed taps' points could not be recorded")
        unclaimed = set(new_ids)  # an id twice in one batch is new once, then a duplicate
        for record in batch:
            if record.kind == "status":
                is_new = True
            else:
                is_new = record.row["event_id"] in unclaimed
                unclaimed.discard(record.row["event_id"])
            if is_new:
                self.committed += 1
            else:
                self.duplicates += 1
            self._acknowledge(record, is_new=is_new)

    @staticmethod
    def _acknowledge(record: Record, *, is_new: bool) -> None:
        if record.on_committed is None:
            return
        try:
            record.on_committed(is_new)
        except Exception:
            # The record is stored; a failing callback must not stop the writer.
            log.exception("after committing %s %s", record.kind, record.row.get("event_id"))

    def _write(self, batch: list[Record]) -> tuple[set[str], list[dict[str, Any]]]:
        with self._store.session() as session:
            new_ids = _apply(session, batch)
            taps = [r.row["event_id"] for r in batch if r.kind == "access"]
            return new_ids, access_outcomes(session, taps)


def _reason(error: Exception) -> str:
    # The database's own words when it refused; the original error when the statement could
    # not even be built (a value SQLAlchemy could not convert).
    cause = error.orig if isinstance(error, DBAPIError) else error.__cause__ or error
    if isinstance(error, DBAPIError):
        return f"refused by the database: {type(cause).__name__}: {cause}".strip()
    return f"cannot be written: {type(cause).__name__}: {cause}"


def _apply(session: Session, batch: list[Record]) -> set[str]:
    new_ids: set[str] = set()
    for kind in ("access", "door", "desk"):
        rows = [r.row for r in batch if r.kind == kind and not r.row.get("decided_offline")]
        new_ids |= insert_new(session, kind, rows)
    new_ids |= record_offline_taps(
        session, [r.row for r in batch if r.kind == "access" and r.row.get("decided_offline")]
    )
    # Door state follows the newest new event; status follows its own timestamp.
    latest_door: dict[str, tuple[datetime, str]] = {}
    for record in batch:
        row = record.row
        if record.kind == "door" and row["event_id"] in new_ids:
            current = latest_door.get(row["door_id"])
            if current is None or row["at"] >= current[0]:
                latest_door[row["door_id"]] = (row["at"], row["state"])
        elif record.kind == "status":
            record_device_status(session, row["device_id"], **row["status"])
    for door_id, (_, state) in latest_door.items():
        record_door_state(session, door_id, state)
    return new_ids
