"""The recorder: every telemetry point waits in a durable outbox until InfluxDB acknowledges it.

A door, desk or device point is committed to the outbox (its own SQLite file, WAL) when its event
is observed (a redelivery writes the same point again: same series, same time). A tap's point is
committed from what SQL holds once its record is committed (``EventWriter``), before the edge is
told it may forget the tap: one point per tap, with its final outcome. A tap the door decided
offline after the gateway had answered also queues the deletion of the point of the gateway's
answer (another series, since ``result`` and ``reason`` are tags), in order behind it; a
deletion is a line ``DELETE <ns> <predicate>`` in the same outbox. A forwarder task sends the
oldest points in batches (gzip) through influxdb-client's synchronous v2 write API, in a worker
thread, with the client's own retries off: the outbox does the retrying, with exponential
back-off. A point leaves the outbox only after a 2xx.

- A 400/413/422 means a point (not InfluxDB) is at fault: the batch is split in halves until the
  bad points stand alone; each is logged with InfluxDB's reason, moved to the ``rejected`` table
  and counted (``rejected``); the points behind it go on. A rewrite of an already-written point
  is harmless: same series, same timestamp, same values.
- 401/403/404 (token, org, bucket) and 429/5xx/no answer: nothing is wrong with the points;
  wait and retry the same batch, doubling the wait up to ``max_backoff``.
- The outbox is bounded (``max_points``): at the bound the oldest point is dropped, logged and
  counted (``dropped``).
- On exit the forwarder gets ``flush_seconds`` to empty the outbox; what is left stays on disk
  and leaves after the next start. A killed gateway loses nothing committed either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from gateway import measurements
from gateway.errors import GatewayError
from varco.protocol import Payload, Topic

log = logging.getLogger(__name__)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS points (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        line TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS rejected (
        seq INTEGER PRIMARY KEY,
        line TEXT NOT NULL,
        reason TEXT NOT NULL,
        rejected_at REAL NOT NULL
    )""",
)

# A point's own fault; anything else is InfluxDB's or the configuration's, and is retried.
_POINT_FAULTS = frozenset({400, 413, 422})


class RecorderError(GatewayError, OSError):
    """The recorder's outbox file cannot be opened."""


@dataclass(frozen=True, slots=True)
class InfluxTarget:
    url: str
    org: str
    bucket: str
    token: str = ""


@dataclass(frozen=True, slots=True)
class RecorderOptions:
    batch_size: int = 5000
    max_points: int = 1_000_000
    flush_seconds: float = 5.0
    first_backoff: float = 0.2
    # Capped low: the outbox resumes within seconds of InfluxDB coming back, however long it
    # was away (a failed write every 2 s costs nothing worth saving).
    max_backoff: float = 2.0
    timeout_seconds: float = 10.0


class _RejectedError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class _UnavailableError(Exception):
    pass


class PointOutbox:
    """A bounded FIFO of line-protocol points on disk, with a table of rejected points."""

    def __init__(self, path: Path, *, max_points: int = 1_000_000) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                self._db.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise RecorderError(f"cannot open the recorder outbox {path}: {exc}") from exc
        self._max = max_points
        self.depth: int = self._db.execute("SELECT count(*) FROM points").fetchone()[0]
        self.dropped = 0

    def put(self, lines: Iterable[str]) -> int:
        """Commit points in one transaction, dropping the oldest at the bound; return how many."""
        batch = list(lines)
        if not batch:
            return 0
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT INTO points (line) VALUES (?)", [(x,) for x in batch])
            excess = self.depth + len(batch) - self._max
            if excess > 0:
                self._db.execute(
                    "DELETE FROM points WHERE seq IN (SELECT seq FROM points ORDER BY seq LIMIT ?)",
                    (excess,),
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self.depth += len(batch)
        if excess > 0:
            self.depth -= excess
            self.dropped += excess
            log.warning(
                "recorder outbox full (%d points): dropped the %d oldest (%d dropped so far)",
                self._max,
                excess,
                self.dropped,
            )
        return len(batch)

    def oldest(self, limit: int) -> list[tuple[int, str]]:
        """Return up to ``limit`` of the oldest points, as (seq, line)."""
        rows = self._db.execute(
            "SELECT seq, line FROM points ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        return [(int(seq), str(line)) for seq, line in rows]

    def remove(self, seqs: list[int]) -> None:
        """Forget points InfluxDB has acknowledged (or that were dropped meanwhile)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            removed = 0
            for start in range(0, len(seqs), 500):
                chunk = seqs[start : start + 500]
                marks = ",".join("?" * len(chunk))
                cursor = self._db.execute(
                    f"DELETE FROM points WHERE seq IN ({marks})",  # noqa: S608
                    chunk,
                )
                removed += cursor.rowcount
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self.depth -= removed

    def reject(self, seq: int, line: str, reason: str) -> None:
        """Move one point InfluxDB refused to the ``rejected`` table."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            cursor = self._db.execute("DELETE FROM points WHERE seq = ?", (seq,))
            self._db.execute(
                "INSERT OR REPLACE INTO rejected (seq, line, reason, rejected_at) "
                "VALUES (?, ?, ?, ?)",
                (seq, line, reason[:1000], time.time()),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self.depth -= cursor.rowcount

    def rejected(self) -> list[tuple[str, str]]:
        """Return the rejected points, as (line, reason), oldest first."""
        rows = self._db.execute("SELECT line, reason FROM rejected ORDER BY seq").fetchall()
        return [(str(line), str(reason)) for line, reason in rows]

    def close(self) -> None:
        self._db.close()


class Recorder:
    """Observes ingest, keeps points on disk, forwards them to InfluxDB; an async context."""

    def __init__(
        self,
        target: InfluxTarget,
        outbox_path: Path,
        options: RecorderOptions | None = None,
        *,
        desk_areas: Mapping[str, str] | None = None,
    ) -> None:
        self._target = target
        self._options = options or RecorderOptions()
        self.outbox = PointOutbox(outbox_path, max_points=self._options.max_points)
        # Which area each desk is in, for the desk points' ``area`` tag; the gateway keeps it
        # current as desks are registered.
        self.desk_areas: Mapping[str, str] = desk_areas or {}
        self._client = InfluxDBClient(
            url=target.url,
            token=target.token,
            org=target.org,
            enable_gzip=True,
            timeout=int(self._options.timeout_seconds * 1000),
            retries=False,
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._delete_api = self._client.delete_api()
        self._news = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.counters: Counter[str] = Counter()

    # --- what ingest calls -------------------------------------------------------------

    def on_message(self, topic: Topic, payload: Payload) -> None:
        """Commit the points of a door, desk or status message (an ingest observer)."""
        self.record(measurements.message_points(topic, payload, self.desk_areas))

    def on_access_committed(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Commit the points of taps as SQL holds them (the event writer, after a commit)."""
        lines: list[str] = []
        for row in rows:
            superseded = measurements.superseded_access_point(row)
            if superseded is not None:
                lines.append(_deletion(superseded))
            lines.append(measurements.access_point(row).line())
        self._put(lines)

    def record(self, points: Iterable[measurements.Sample]) -> None:
        """Commit points to the outbox; the forwarder sends them later."""
        self._put([p.line() for p in points])

    def _put(self, lines: list[str]) -> None:
        self.counters["recorded"] += self.outbox.put(lines)
        self.counters["dropped"] = self.outbox.dropped
        self._news.set()

    @property
    def depth(self) -> int:
        """Points waiting for InfluxDB."""
        return self.outbox.depth

    # --- the lifetime ------------------------------------------------------------------

    async def __aenter__(self) -> Recorder:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def start(self) -> None:
        """Start the forwarder."""
        self._task = asyncio.create_task(self._forward(), name="recorder")

    async def flush(self, within: float) -> bool:
        """Wait until the outbox is empty, at most ``within`` seconds; return whether it is."""
        deadline = time.monotonic() + within
        while self.outbox.depth > 0:
            if time.monotonic() >= deadline or self._task is None or self._task.done():
                return False
            self._news.set()
            await asyncio.sleep(0.02)
        return True

    async def stop(self) -> None:
        """Flush within ``flush_seconds``, then stop; what is left waits on disk."""
        if not await self.flush(self._options.flush_seconds):
            log.warning("%d points left in the recorder outbox for the next start", self.depth)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._client.close()  # type: ignore[no-untyped-call]
        self.outbox.close()

    # --- the forwarder -----------------------------------------------------------------

    async def _forward(self) -> None:
        backoff = self._options.first_backoff
        while True:
            self._news.clear()
            batch = self.outbox.oldest(self._options.batch_size)
            if not batch:
                await self._news.wait()
                continue
            # Points up to the first deletion go together; a deletion goes alone, in order.
            cut = next((i for i, (_, line) in enumerate(batch) if line.startswith(DELETE)), None)
            if cut is not None:
                batch = batch[: cut or 1]
            try:
                if batch[0][1].startswith(DELETE):
                    await self._delete(batch[0])
                else:
                    await self._send_or_isolate(batch)
            except _UnavailableError as exc:
                self.counters["write_failures"] += 1
                log.warning(
                    "InfluxDB did not take %d points (%s); retrying in %.1fs",
                    len(batch),
                    exc,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._options.max_backoff)
            else:
                backoff = self._options.first_backoff

    async def _send_or_isolate(self, batch: list[tuple[int, str]]) -> None:
        try:
            await asyncio.to_thread(self._write, [line for _, line in batch])
        except _RejectedError as exc:
            if len(batch) == 1:
                seq, line = batch[0]
                self.outbox.reject(seq, line, exc.reason)
                self.counters["rejected"] += 1
                log.warning("InfluxDB rejected a point (%d %s): %s", exc.status, exc.reason, line)
                return
            middle = len(batch) // 2
            await self._send_or_isolate(batch[:middle])
            await self._send_or_isolate(batch[middle:])
            return
        self.outbox.remove([seq for seq, _ in batch])
        self.counters["written"] += len(batch)

    async def _delete(self, item: tuple[int, str]) -> None:
        seq, line = item
        _, nanoseconds, predicate = line.split(" ", 2)
        try:
            await asyncio.to_thread(self._delete_now, int(nanoseconds), predicate)
        except _RejectedError as exc:
            self.outbox.reject(seq, line, exc.reason)
            self.counters["rejected"] += 1
            log.warning("InfluxDB refused a deletion (%d %s): %s", exc.status, exc.reason, line)
            return
        self.outbox.remove([seq])
        self.counters["deleted"] += 1

    def _delete_now(self, nanoseconds: int, predicate: str) -> None:
        # [t, t + 1 ns]: the point's own time, whether the end is inclusive or not (points
        # are whole microseconds, so t + 1 ns holds none).
        with _translated():
            self._delete_api.delete(
                start=_rfc3339(nanoseconds),
                stop=_rfc3339(nanoseconds + 1),
                predicate=predicate,
                bucket=self._target.bucket,
                org=self._target.org,
            )

    def _write(self, lines: list[str]) -> None:
        # Runs in a worker thread.
        with _translated():
            self._write_api.write(
                bucket=self._target.bucket,
                org=self._target.org,
                record="\n".join(lines),
                write_precision=WritePrecision.NS,  # type: ignore[arg-type]
            )


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Turn influxdb-client's errors into ours: the point's fault, or InfluxDB's (retried)."""
    try:
        yield
    except ApiException as exc:
        status = int(exc.status or 0)
        reason = _reason(exc)
        if status in _POINT_FAULTS:
            raise _RejectedError(status, reason) from None
        raise _UnavailableError(f"HTTP {status}: {reason}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise _UnavailableError(str(exc)) from None


DELETE = "DELETE "


def _deletion(sample: measurements.Sample) -> str:
    return f"{DELETE}{sample.nanoseconds} {measurements.delete_predicate(sample)}"


def _rfc3339(nanoseconds: int) -> str:
    seconds, rest = divmod(nanoseconds, 1_000_000_000)
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}.{rest:09d}Z"


def _reason(exc: ApiException) -> str:
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    return str(body or exc.reason or "no reason given").strip()[:1000]
