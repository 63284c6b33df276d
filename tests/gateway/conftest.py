"""Fixtures for the API's tests: the test space on each database, the app, an admin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from gateway.api import create_app
from gateway.service import Gateway
from gateway.settings import Settings
from gateway.store import Store
from tests.factories import Space, make_space

Headers = dict[str, str]


@pytest.fixture
def space(database_url: str) -> Space:
    with Store(database_url) as store:
        return make_space(store)


@pytest.fixture
def gateway(database_url: str, space: Space) -> Gateway:
    return Gateway(Settings(database_url=database_url), ingest=False)


@pytest.fixture
def client(gateway: Gateway) -> Iterator[TestClient]:
    with TestClient(create_app(gateway), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def admin(space: Space) -> Headers:
    return {"Authorization": f"Bearer {space.admin_token}"}
