"""The fault suite's bed, its scale, and the table of every scenario's account at the end."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import need
from tests.faults.bed import FaultBed, Sizes, fault_bed
from tests.faults.ledger import HEADER, Account

DEFAULT_SCALE = 0.25
_ACCOUNTS = pytest.StashKey[list[Account]]()


@pytest.fixture
def sizes(request: pytest.FixtureRequest) -> Sizes:
    option = request.config.getoption("--fault-scale")
    scale = option if option is not None else float(os.environ.get("VARCO_FAULT_SCALE", "0"))
    return Sizes(scale or DEFAULT_SCALE)


@pytest.fixture
async def bed(
    tmp_path: Path, postgres_url: str, sizes: Sizes, request: pytest.FixtureRequest
) -> AsyncIterator[FaultBed]:
    for binary, package in (("mosquitto", "mosquitto"), ("influxd", "influxdb")):
        need(shutil.which(binary) is not None, f"{binary} is not installed (apt install {package})")
    async with fault_bed(tmp_path, postgres_url, sizes) as running:
        yield running
        request.config.stash.setdefault(_ACCOUNTS, []).extend(running.accounts)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    accounts = config.stash.get(_ACCOUNTS, [])
    if not accounts:
        return
    terminalreporter.section("fault suite: every event, landed once, lost or duplicated")
    terminalreporter.write_line(HEADER)
    for result in accounts:
        terminalreporter.write_line(result.row())
