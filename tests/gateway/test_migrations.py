"""The migrations: they build the models' schema on SQLite and PostgreSQL, once, from the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, select, text

from gateway.store import Store
from gateway.store.migrations import NEW_REVISION, alembic_config
from gateway.store.models import Base, GuestPass, Zone
from varco import protocol


def differences(store: Store) -> list[Any]:
    """What the models have that the migrated database lacks, or the other way round."""
    with store.engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def revision(store: Store) -> str | None:
    with store.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_the_migrations_build_exactly_the_models(database_url: str) -> None:
    with Store(database_url) as store:
        store.upgrade()

        found = differences(store)

    assert found == [], (
        "the models and the migrations disagree; after changing gateway/store/models.py, "
        f"write a migration with `{NEW_REVISION}`, review it and commit it. Differences:\n"
        + "\n".join(map(repr, found))
    )


def test_the_migrations_form_one_line() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()

    assert len(heads) == 1, (
        f"the migrations branch into {heads}: two changes were written from the same revision; "
        "set the newer one's down_revision to the other's id"
    )


def test_upgrading_twice_changes_nothing(database_url: str) -> None:
    with Store(database_url) as store:
        store.upgrade()
        with store.session() as session:
            session.add(Zone(id="attic", name="Attic"))
        tables = set(inspect(store.engine).get_table_names())

        store.upgrade()

        assert set(inspect(store.engine).get_table_names()) == tables
        assert revision(store) == head()
        with store.session() as session:
            assert list(session.scalars(select(Zone.id))) == ["attic"]


def test_every_revision_reverts_and_applies_again(database_url: str) -> None:
    with Store(database_url) as store:
        store.upgrade()
        with store.engine.connect() as connection:
            command.downgrade(alembic_config(connection), "base")
        assert set(inspect(store.engine).get_table_names()) <= {"alembic_version"}

        store.upgrade()

        assert differences(store) == []


def test_varco_gateway_upgrade_migrates_and_exits(tmp_path: Path) -> None:
    database = tmp_path / "varco.db"
    env = {**os.environ, "VARCO_DATABASE_URL": f"sqlite:///{database}"}

    # From another folder: the installed package finds its migrations without alembic.ini.
    result = subprocess.run(
        [sys.executable, "-m", "varco", "gateway", "--upgrade"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stderr
    engine = create_engine(f"sqlite:///{database}")
    try:
        tables = set(inspect(engine).get_table_names())
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    assert current == head()


def test_the_upgrade_hashes_the_codes_of_existing_passes(database_url: str) -> None:
    code = "A1B2C3D4E5F6"  # 48 bits: how codes were made before
    with Store(database_url) as store:
        with store.engine.connect() as connection:
            command.upgrade(alembic_config(connection), "01b7971d2776")
        with store.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO guest_passes (code, guest_name, valid_from, valid_until, "
                    "revoked, created_at) VALUES (:code, 'Hedy', :at, :at, false, :at)"
                ),
                {"code": code, "at": datetime(2026, 12, 1, tzinfo=UTC)},
            )
        store.upgrade()
        with store.session() as session:
            [guest_pass] = session.scalars(select(GuestPass))
        columns = {c["name"] for c in inspect(store.engine).get_columns("guest_passes")}

    assert guest_pass.code_hash == protocol.pass_code_hash(code)
    assert "code" not in columns
