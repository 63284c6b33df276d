"""The access log forgets who went where once the retention period is over."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from gateway.service import Gateway
from gateway.settings import Settings
from gateway.store import Store
from gateway.store.models import AccessEvent
from gateway.store.records import forget_access_before, insert_new
from tests.factories import access_row, make_space


def tap(event_id: str, at: datetime) -> dict[str, Any]:
    return access_row(event_id, at)


def kept(store: Store) -> list[str]:
    with store.session() as session:
        return sorted(session.scalars(select(AccessEvent.event_id)))


def test_taps_before_the_cut_are_forgotten(database_url: str) -> None:
    now = datetime.now(UTC)
    with Store(database_url) as store:
        make_space(store)
        with store.session() as session:
            insert_new(
                session,
                "access",
                [
                    tap("old-tap-0001", now - timedelta(days=40)),
                    tap("new-tap-0001", now - timedelta(days=2)),
                ],
            )
        with store.session() as session:
            gone = forget_access_before(session, now - timedelta(days=30))

        assert gone == 1
        assert kept(store) == ["new-tap-0001"]


async def test_the_gateway_enforces_its_retention_period(database_url: str) -> None:
    now = datetime.now(UTC)
    with Store(database_url) as store:
        make_space(store)
        with store.session() as session:
            insert_new(
                session,
                "access",
                [
                    tap("old-tap-0002", now - timedelta(days=31)),
                    tap("new-tap-0002", now - timedelta(days=29)),
                ],
            )
    settings = Settings(database_url=database_url, access_log_retention_days=30)

    async with Gateway(settings, ingest=False):
        for _ in range(100):
            with Store(database_url) as store:
                if kept(store) == ["new-tap-0002"]:
                    break
            await asyncio.sleep(0.05)

    with Store(database_url) as store:
        assert kept(store) == ["new-tap-0002"]
