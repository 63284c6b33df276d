"""SQL storage: a SQLite file by default, PostgreSQL by URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from gateway.store import audit, changes, migrations


class Store:
    """An engine and a session factory; a context manager that disposes the engine."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        # A server's connections can die under us; a SQLite file's cannot, and pinging it
        # before every transaction costs a statement per batch of events.
        options: dict[str, Any] = {"echo": echo, "pool_pre_ping": not url.startswith("sqlite")}
        if url.startswith("sqlite"):
            # The API runs in a thread pool and the ingest writer in its own thread.
            options["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine: Engine = create_engine(url, **options)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        audit.watch(self._sessions)
        changes.watch(self._sessions)

    def upgrade(self) -> None:
        """Migrate the schema to the newest revision; safe on every start, and by replicas."""
        migrations.upgrade(self.engine)

    def create_schema(self) -> None:
        """Bring the schema up to date (kept for callers that predate migrations)."""
        self.upgrade()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Open a session that commits on success and rolls back on error."""
        with self._sessions.begin() as session:
            yield session

    def new_session(self) -> Session:
        """Open a session whose caller commits explicitly (the API's unit of work)."""
        return self._sessions()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    # WAL lets the API read while the ingest writer commits; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


__all__ = ["Store"]
