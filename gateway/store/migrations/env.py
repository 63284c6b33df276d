"""Alembic's entry point: migrate the connection the gateway hands over, or one made from a URL."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection, TypeDecorator, create_engine, pool

from gateway.settings import Settings
from gateway.store.migrations import exclusive
from gateway.store.models import Base

config = context.config


def _url() -> str:
    # The `alembic` command, run by hand, migrates the database the gateway would use.
    return config.get_main_option("sqlalchemy.url") or Settings().database_url


def _render_item(kind: str, item: Any, _context: AutogenContext) -> str | Literal[False]:
    if kind == "type" and isinstance(item, TypeDecorator):
        # A revision must not import the models, which move on: write the column's SQL type.
        return f"sa.{item.impl!r}"
    return False


def _migrate(connection: Connection | None) -> None:
    context.configure(
        connection=connection,
        url=None if connection is not None else _url(),
        literal_binds=connection is None,
        target_metadata=Base.metadata,
        # SQLite changes a table by copying it: batch operations write every migration so.
        render_as_batch=True,
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def _migrate_online(connection: Connection) -> None:
    with exclusive(connection):
        _migrate(connection)


if context.is_offline_mode():
    _migrate(None)
elif (given := config.attributes.get("connection")) is not None:
    _migrate_online(given)
else:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _migrate_online(connection)
    finally:
        engine.dispose()
