"""``python -m gateway.store.migrations "what changed"``: write the revision the models need."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from alembic import command
from alembic.operations.ops import MigrationScript
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from gateway.store.migrations import alembic_config, upgrade


def new_revision(message: str) -> Path | None:
    """Write a revision from the newest one to the models as they are; ``None`` if in step."""
    with tempfile.TemporaryDirectory() as folder:
        # A scratch database at head is what the models are compared with.
        engine = create_engine(f"sqlite:///{Path(folder) / 'head.db'}")
        try:
            upgrade(engine)
            with engine.connect() as connection:
                written = command.revision(
                    alembic_config(connection),
                    message=message,
                    autogenerate=True,
                    process_revision_directives=_skip_empty,
                )
        finally:
            engine.dispose()
    scripts = written if isinstance(written, list) else [written]
    paths = [Path(script.path) for script in scripts if script is not None]
    for path in paths:
        _format(path)
    return paths[0] if paths else None


def _format(path: Path) -> None:
    # A written revision passes the same checks as the rest of the code without a hand edit.
    if importlib.util.find_spec("ruff") is None:
        return
    for ruff in (["format", "--quiet"], ["check", "--fix", "--quiet"]):
        subprocess.run([sys.executable, "-m", "ruff", *ruff, str(path)], check=False)


def _skip_empty(_context: MigrationContext, _revision: Any, directives: list[Any]) -> None:
    script = directives[0]
    if isinstance(script, MigrationScript) and all(
        ops.is_empty() for ops in script.upgrade_ops_list
    ):
        directives[:] = []


def main(argv: list[str]) -> int:
    """Write a revision named by ``argv``; say where, or that the models need none."""
    if len(argv) != 1 or not argv[0].strip():
        print('usage: python -m gateway.store.migrations "what changed"', file=sys.stderr)
        return 2
    path = new_revision(argv[0])
    if path is None:
        print("the migrations already match the models: no revision written", file=sys.stderr)
        return 0
    print(path)
    print("review it, then commit it with the model change", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
