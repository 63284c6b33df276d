"""One replica at a time publishes the doors' allow-lists.

Each replica keeps every list in step with the model, but the updates a door takes must come
from one sequence of versions: two publishers would each send updates "since" their own last
version, and every door would see gaps. On PostgreSQL the publisher is whoever holds a session
advisory lock (released by the server when that replica's connection dies, so another takes
over); a SQLite file serves one gateway, which always publishes.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from gateway.store import Store

log = logging.getLogger(__name__)

# pg_try_advisory_lock's key: "varco" and "allowlist", as a number no one else will pick.
LOCK_KEY = 0x7661_7263_6F_616C


class Leadership:
    """Whether this replica is the one that publishes; ask ``holds()`` now and then."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._postgres = store.engine.dialect.name == "postgresql"
        self._connection: Connection | None = None
        self._held = False

    def holds(self) -> bool:
        """Return whether this replica publishes now, taking the role if it is free."""
        if not self._postgres:
            return True
        try:
            if self._connection is None:
                self._connection = self._store.engine.connect()
            if self._held:
                # Still ours while the session lives: a dead connection raises here.
                self._connection.execute(text("SELECT 1"))
            else:
                self._held = bool(
                    self._connection.execute(
                        text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}
                    ).scalar()
                )
            self._connection.commit()
        except SQLAlchemyError as exc:
            log.warning("cannot tell whether this replica publishes allow-lists: %s", exc)
            self.close()
            return False
        return self._held

    def close(self) -> None:
        """Give the role up: the lock goes with the server session, which is closed."""
        if self._connection is not None:
            # Invalidated, not returned to the pool: a pooled session would keep the lock.
            self._connection.invalidate()
            self._connection.close()
            self._connection = None
        self._held = False
