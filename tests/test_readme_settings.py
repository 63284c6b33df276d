"""The README's settings table names every setting the gateway reads, and only those."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def table_variables() -> set[str]:
    """The variables named in the first column of the README's settings table."""
    names: set[str] = set()
    for line in README.read_text().splitlines():
        if line.startswith("| `VARCO_"):
            first = line.split("|")[1]
            names |= set(re.findall(r"`(VARCO_[A-Z0-9_]+)`", first))
    return names


def test_every_setting_is_in_the_readme_table() -> None:
    settings = {f"VARCO_{name.upper()}" for name in Settings.model_fields}

    assert sorted(settings - table_variables()) == []
    assert sorted(table_variables() - settings) == []
