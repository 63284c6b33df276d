"""The schema's history as Alembic revisions, configured in code so an installed gateway migrates.

No ``alembic.ini`` is needed at run time: :func:`upgrade` builds Alembic's configuration here and
hands it the connection to migrate. Developers write a revision after changing the models with
``python -m gateway.store.migrations "what changed"``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, func, select

FOLDER = Path(__file__).parent
NEW_REVISION = 'python -m gateway.store.migrations "what changed"'

# Any number every replica agrees on: it names the PostgreSQL lock that serialises migrations.
_LOCK_KEY = 0x76617263_6F000001


def alembic_config(connection: Connection | None = None) -> Config:
    """Build Alembic's configuration in code; ``connection``, if given, is the one to migrate."""
    config = Config()
    # ConfigParser interpolates "%", which a folder name may contain.
    config.set_main_option("script_location", str(FOLDER).replace("%", "%%"))
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> None:
    """Bring the database behind ``engine`` to the newest revision; a no-op once it is there."""
    with engine.connect() as connection:
        command.upgrade(alembic_config(connection), "head")


@contextmanager
def exclusive(connection: Connection) -> Iterator[None]:
    """Hold ``connection`` for a migration: one replica at a time, SQLite's foreign keys off."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        # Replicas that start together would otherwise race to create the same tables.
        connection.execute(select(func.pg_advisory_lock(_LOCK_KEY)))
    elif dialect == "sqlite":
        # A batch migration copies a table and drops the old one; with foreign keys on, the
        # drop deletes the rows that refer to it. SQLite ignores this pragma in a transaction.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        yield
    finally:
        connection.rollback()
        if dialect == "postgresql":
            connection.execute(select(func.pg_advisory_unlock(_LOCK_KEY)))
        elif dialect == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()


__all__ = ["FOLDER", "NEW_REVISION", "alembic_config", "exclusive", "upgrade"]
