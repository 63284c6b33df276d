"""The edge's durable outbox: every event waits here, on disk, until the gateway has stored it.

An event leaves the outbox when a receipt from the gateway names it (``edge_agent.link``), not
when the broker acknowledges it: a broker's PUBACK is no proof that anything was stored.

SQLite in WAL mode: a crash of the agent loses nothing committed; ``synchronous=NORMAL`` means
a power cut may lose the last few milliseconds of events, the price of not wearing out the SD
card with an fsync per event. Events leave in the order they were made, with their own
timestamps inside.

The outbox is bounded (``max_events``). At the bound the oldest desk event is dropped first
(a later desk event says the same desk's state again), then the oldest event of any kind; every
drop is logged and counted (``dropped``, reported in ``status``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from edge_agent.errors import EdgeError
from varco.protocol import Channel

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    event_id TEXT
)
"""


class OutboxError(EdgeError, OSError):
    """The outbox file cannot be opened (a state folder that is not writable, say)."""


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    channel: Channel
    payload: bytes
    event_id: str = ""


class Outbox:
    """A bounded FIFO of encoded events on disk; a context manager that closes the file."""

    def __init__(self, path: Path, *, max_events: int = 100_000) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
            _add_event_ids(self._db)
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(f"cannot open the outbox {path}: {exc}") from exc
        self._max = max_events
        self._depth: int = self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        self._waiting = asyncio.Event()
        self.dropped = 0

    @property
    def depth(self) -> int:
        """Events not yet acknowledged by the broker."""
        return self._depth

    def put(self, channel: Channel, payload: bytes, event_id: str) -> int:
        """Store an event; return its sequence number."""
        self._db.execute("BEGIN IMMEDIATE")  # one transaction: make room, then add
        try:
            if self._depth >= self._max:
                self._drop_one()
            cursor = self._db.execute(
                "INSERT INTO outbox (channel, payload, created_at, event_id) VALUES (?, ?, ?, ?)",
                (channel.value, payload, time.time(), event_id),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._depth += 1
        self._waiting.set()
        seq = cursor.lastrowid
        assert seq is not None
        return seq

    def replace(self, seq: int, payload: bytes) -> bool:
        """Rewrite an event still waiting; return ``False`` if it has already left."""
        cursor = self._db.execute("UPDATE outbox SET payload = ? WHERE seq = ?", (payload, seq))
        return cursor.rowcount == 1

    def oldest(self, excluding: set[int] | frozenset[int] = frozenset()) -> Entry | None:
        """Return the event that leaves next (skipping ``excluding``), or ``None``."""
        marks = ",".join("?" * len(excluding))
        where = f"WHERE seq NOT IN ({marks})" if excluding else ""
        row = self._db.execute(
            f"SELECT seq, channel, payload, event_id FROM outbox {where} "  # noqa: S608
            "ORDER BY seq LIMIT 1",
            tuple(excluding),
        ).fetchone()
        return None if row is None else _entry(row)

    def after(self, seq: int) -> Entry | None:
        """Return the first event after ``seq``, or ``None``."""
        row = self._db.execute(
            "SELECT seq, channel, payload, event_id FROM outbox WHERE seq > ? ORDER BY seq LIMIT 1",
            (seq,),
        ).fetchone()
        return None if row is None else _entry(row)

    def remove(self, entry: Entry) -> bool:
        """Forget an event the gateway has stored, unless it was rewritten meanwhile.

        A tap is rewritten when its door gives up on the gateway and decides offline; the
        rewritten event must still leave, so only the exact payload sent is removed.
        """
        cursor = self._db.execute(
            "DELETE FROM outbox WHERE seq = ? AND payload = ?", (entry.seq, entry.payload)
        )
        self._depth -= cursor.rowcount
        return cursor.rowcount == 1

    def expect(self) -> None:
        """Start watching for news: a ``wait`` after this returns on any later ``put``."""
        self._waiting.clear()

    def nudge(self) -> None:
        """Wake a ``wait``: something changed that the forwarder should look at again."""
        self._waiting.set()

    async def wait(self) -> None:
        """Wait for a ``put`` or a ``nudge`` since the last ``expect``."""
        await self._waiting.wait()

    def _drop_one(self) -> None:
        row = (
            self._db.execute(
                "SELECT seq, channel FROM outbox WHERE channel = ? ORDER BY seq LIMIT 1",
                (Channel.DESK.value,),
            ).fetchone()
            or self._db.execute("SELECT seq, channel FROM outbox ORDER BY seq LIMIT 1").fetchone()
        )
        self._db.execute("DELETE FROM outbox WHERE seq = ?", (row[0],))
        self._depth -= 1
        self.dropped += 1
        log.warning(
            "outbox full (%d events): dropped the oldest %s event (%d dropped so far)",
            self._max,
            row[1],
            self.dropped,
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _entry(row: tuple[int, str, bytes, str | None]) -> Entry:
    return Entry(row[0], Channel(row[1]), bytes(row[2]), row[3] or "")


def _add_event_ids(db: sqlite3.Connection) -> None:
    # An outbox written by an agent before receipts: name its events by their ids.
    columns = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
    if "event_id" not in columns:
        db.execute("ALTER TABLE outbox ADD COLUMN event_id TEXT")
    unnamed = db.execute("SELECT seq, payload FROM outbox WHERE event_id IS NULL").fetchall()
    for seq, payload in unnamed:
        try:
            event_id = str(json.loads(payload).get("event_id", ""))
        except (ValueError, AttributeError):
            event_id = ""
        db.execute("UPDATE outbox SET event_id = ? WHERE seq = ?", (event_id, seq))
