"""The event writer: queues event records off the decision path and commits them in batches.

Each record carries a callback run once its batch is committed; the ingest loop uses it to
acknowledge the MQTT message only then, so a crash before the commit means the broker
redelivers, never that an event is lost. The queue needs no bound of its own: unacknowledged
QoS 1 messages are capped by the broker's in-flight window, which is the back-pressure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.store import Store
from gateway.store.records import (
    insert_new,
    record_device_status,
    record_door_state,
    record_offline_taps,
)

log = logging.getLogger(__name__)

RecordKind = Literal["access", "door", "desk", "status"]


@dataclass(frozen=True, slots=True)
class Record:
    kind: RecordKind
    row: dict[str, Any]
    on_committed: Callable[[bool], None] | None = None
    """Called after the commit with ``True`` if the row was new, ``False`` if a duplicate."""


class EventWriter:
    """Batches records into transactions on a worker thread; retries until the store answers."""

    def __init__(self, store: Store, *, max_batch: int = 500, max_backoff: float = 10.0) -> None:
        self._store = store
        self._queue: asyncio.Queue[Record] = asyncio.Queue()
        self._max_batch = max_batch
        self._max_backoff = max_backoff
        self.committed = 0
        self.duplicates = 0
        self.failures = 0
        self.rejected = 0

    @property
    def depth(self) -> int:
        """Records waiting to be committed."""
        return self._queue.qsize()

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
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._commit(batch)
            for _ in batch:
                self._queue.task_done()

    async def _commit(self, batch: list[Record]) -> None:
        backoff = 0.1
        while True:
            try:
                new_ids = await asyncio.to_thread(self._write, batch)
            except (IntegrityError, DataError) as exc:
                # The database refuses a row for good.
                await self._refuse(batch, f"refused by the database ({exc})")
                return
            except SQLAlchemyError as exc:
                self.failures += 1
                log.error(
                    "could not commit %d event records (%s); retrying in %.1fs",
                    len(batch),
                    type(exc).__name__,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
            except Exception as exc:
                # Not the database: a record this code cannot write. It must not stop every
                # commit (and acknowledgement) after it.
                await self._refuse(batch, "cannot be written", error=exc)
                return
            else:
                self._settle(batch, new_ids)
                return

    async def _refuse(
        self, batch: list[Record], why: str, *, error: BaseException | None = None
    ) -> None:
        """Keep a record that cannot be stored out, say why, and go on with the others.

        ``error``, a fault of this code rather than the database's answer, is logged with its
        traceback.
        """
        if len(batch) > 1:  # one bad row must not block the rows behind it: isolate it
            for record in batch:
                await self._commit([record])
            return
        self.rejected += 1
        log.error("event record %s: %s", why, batch[0], exc_info=error)
        self._acknowledge(batch[0], is_new=False)

    def _settle(self, batch: list[Record], new_ids: set[str]) -> None:
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

    def _write(self, batch: list[Record]) -> set[str]:
        with self._store.session() as session:
            return _apply(session, batch)


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
