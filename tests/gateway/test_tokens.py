"""API tokens: who holds one, how long, and how they are created, listed and revoked, through
the API and through `varco gateway`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, update

from gateway.api import create_app
from gateway.service import Gateway
from gateway.settings import Settings
from gateway.store import Store
from gateway.store.migrations import alembic_config
from gateway.store.models import ApiToken, AuditAction, AuditEntry, Role
from gateway.store.tokens import (
    DEFAULT_LIFETIME,
    MAX_LIFETIME_DAYS,
    Identity,
    hash_token,
    identity_of,
    issue_token,
)
from tests.factories import Space, make_space
from varco.cli import DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS, ROLES

Headers = dict[str, str]


def varco_gateway(database: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VARCO_DATABASE_URL": f"sqlite:///{database}"}
    return subprocess.run(
        [sys.executable, "-m", "varco", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def holder(database: Path, token: str) -> Identity | None:
    with Store(f"sqlite:///{database}") as store, store.session() as session:
        return identity_of(session, token)


def test_a_token_names_its_holder_until_revoked(database_url: str) -> None:
    with Store(database_url) as store:
        store.upgrade()
        with store.session() as session:
            token = issue_token(session, name="front desk", role=Role.OPERATOR)
        with store.session() as session:
            identity = identity_of(session, token)
            unknown = identity_of(session, token + "x")
            session.execute(
                update(ApiToken)
                .where(ApiToken.token_hash == hash_token(token))
                .values(revoked=True)
            )
        with store.session() as session:
            revoked = identity_of(session, token)

    assert identity is not None
    assert (identity.name, identity.role) == ("front desk", Role.OPERATOR)
    assert (unknown, revoked) == (None, None)


def test_the_cli_offers_every_role() -> None:
    assert set(ROLES) == {role.value for role in Role}


@pytest.mark.parametrize("role", list(Role))
def test_create_token_prints_a_token_with_its_role(tmp_path: Path, role: Role) -> None:
    database = tmp_path / "varco.db"

    result = varco_gateway(database, "--create-token", "ops", "--role", role.value)

    assert result.returncode == 0, result.stderr
    in_90_days = (datetime.now(UTC) + timedelta(days=90)).date().isoformat()
    assert f"{role.value} token 'ops' created, valid until {in_90_days}T" in result.stderr
    assert "it is shown only once." in result.stderr
    token = result.stdout.strip()
    assert token.startswith("vk_")
    identity = holder(database, token)
    assert identity is not None
    assert (identity.name, identity.role) == ("ops", role)


def test_create_admin_token_is_create_token_with_role_admin(tmp_path: Path) -> None:
    database = tmp_path / "varco.db"

    result = varco_gateway(database, "--create-admin-token", "root")

    assert result.returncode == 0, result.stderr
    identity = holder(database, result.stdout.strip())
    assert identity is not None
    assert (identity.name, identity.role) == ("root", Role.ADMIN)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--create-token", "ops"], "--create-token NAME goes with --role"),
        (["--role", "viewer"], "--create-token NAME goes with --role"),
        (["--create-token", "ops", "--role", "owner"], "invalid choice: 'owner'"),
        (["--create-token", "a", "--create-admin-token", "b"], "not allowed with argument"),
        (["--upgrade", "--create-admin-token", "b"], "not allowed with argument"),
    ],
    ids=["no-role", "no-name", "unknown-role", "two-tokens", "upgrade-and-token"],
)
def test_a_token_request_that_does_not_add_up_is_a_usage_error(
    tmp_path: Path, args: list[str], says: str
) -> None:
    database = tmp_path / "varco.db"

    result = varco_gateway(database, *args)

    assert result.returncode == 2
    assert says in result.stderr
    assert not database.exists()


def test_the_cli_knows_the_token_lifetimes() -> None:
    assert (DEFAULT_LIFETIME.days, MAX_LIFETIME_DAYS) == (DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS)


def test_a_token_expires_after_its_lifetime(database_url: str) -> None:
    with Store(database_url) as store:
        store.upgrade()
        with store.session() as session:
            short = issue_token(session, name="short", role=Role.VIEWER, lifetime=timedelta(0))
            usual = issue_token(session, name="usual", role=Role.VIEWER)
        with store.session() as session:
            expires = session.scalar(
                select(ApiToken.expires_at).where(ApiToken.token_hash == hash_token(usual))
            )
            assert identity_of(session, short) is None
            assert identity_of(session, usual) is not None

    assert expires is not None
    assert abs(expires - (datetime.now(UTC) + DEFAULT_LIFETIME)) < timedelta(minutes=1)


def test_the_upgrade_gives_tokens_issued_before_it_an_expiry(database_url: str) -> None:
    token = "vk_issued-before-tokens-expired"
    with Store(database_url) as store:
        with store.engine.connect() as connection:
            command.upgrade(alembic_config(connection), "9dd7dc945805")
        with store.engine.begin() as connection:
            # Only the columns of that revision: expires_at does not exist yet.
            connection.execute(
                insert(ApiToken).values(
                    name="old script",
                    role=Role.VIEWER,
                    token_hash=hash_token(token),
                    created_at=datetime(2026, 1, 1, tzinfo=UTC),
                    revoked=False,
                )
            )
        store.upgrade()
        with store.session() as session:
            identity = identity_of(session, token)
            expires = session.scalar(select(ApiToken.expires_at))

    assert identity is not None
    assert identity.name == "old script"
    assert expires is not None
    assert abs(expires - (datetime.now(UTC) + DEFAULT_LIFETIME)) < timedelta(minutes=1)


def bearer(token: str) -> Headers:
    return {"Authorization": f"Bearer {token}"}


def answer(response: httpx.Response, status: int = 200) -> Any:
    request = response.request
    assert response.status_code == status, (
        f"{request.method} {request.url} -> {response.status_code}: {response.text}"
    )
    return response.json()


def audit_entries(database_url: str) -> list[tuple[str, AuditAction, str, dict[str, Any]]]:
    with Store(database_url) as store, store.session() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.entity == "api_token").order_by(AuditEntry.id)
        )
        return [(row.actor, row.action, row.entity_id, row.changes) for row in rows]


@pytest.fixture
def space(database_url: str) -> Space:
    with Store(database_url) as store:
        return make_space(store)


@pytest.fixture
def client(database_url: str, space: Space) -> Iterator[TestClient]:
    gateway = Gateway(Settings(database_url=database_url), ingest=False)
    with TestClient(create_app(gateway), raise_server_exceptions=False) as client:
        yield client


def test_an_admin_creates_lists_and_revokes_a_token_through_the_api(
    client: TestClient, space: Space, database_url: str
) -> None:
    admin = bearer(space.admin_token)

    created = answer(
        client.post(
            "/tokens",
            json={"name": "door script", "role": "operator", "expires_in_days": 7},
            headers=admin,
        ),
        201,
    )
    listed = answer(client.get("/tokens", headers=admin))
    works = client.get("/members", headers=bearer(created["token"])).status_code
    revoked = answer(client.delete(f"/tokens/{created['id']}", headers=admin))
    after = client.get("/members", headers=bearer(created["token"]))
    again = client.delete(f"/tokens/{created['id']}", headers=admin)
    unknown = client.delete("/tokens/999", headers=admin)

    assert created["token"].startswith("vk_")
    expires = datetime.fromisoformat(created["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=1)
    assert [(t["name"], t["role"], t["revoked"]) for t in listed["items"]] == [
        ("test admin", "admin", False),
        ("test viewer", "viewer", False),
        ("door script", "operator", False),
    ]
    assert all(set(t) == set(listed["items"][0]) for t in listed["items"])
    assert not {"token", "token_hash"} & set(listed["items"][0])
    assert created["token"] not in str(listed)
    assert works == 200
    assert revoked["revoked"] is True
    assert (after.status_code, after.json()["detail"]) == (401, "invalid, expired or revoked token")
    assert (again.status_code, again.json()["detail"]) == (
        409,
        f"token {created['id']} is already revoked",
    )
    assert (unknown.status_code, unknown.json()["detail"]) == (404, "no token 999")
    logged = audit_entries(database_url)
    assert [(actor, action, entity_id) for actor, action, entity_id, _ in logged] == [
        ("test admin", AuditAction.CREATE, str(created["id"])),
        ("test admin", AuditAction.UPDATE, str(created["id"])),
    ]
    assert logged[1][3] == {"revoked": {"old": False, "new": True}}
    assert "token_hash" not in logged[0][3]


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_only_an_admin_manages_tokens(
    client: TestClient, database_url: str, space: Space, role: Role
) -> None:
    with Store(database_url) as store, store.session() as session:
        headers = bearer(issue_token(session, name="someone", role=role))

    answers = [
        client.get("/tokens", headers=headers),
        client.post("/tokens", json={"name": "mine", "role": "admin"}, headers=headers),
        client.delete("/tokens/1", headers=headers),
    ]

    assert [(r.status_code, r.json()["detail"]) for r in answers] == [
        (403, f"role {role.value!r} may not do this")
    ] * 3
    assert identity_of_admin_still_valid(database_url, space)


def identity_of_admin_still_valid(database_url: str, space: Space) -> bool:
    with Store(database_url) as store, store.session() as session:
        return identity_of(session, space.admin_token) is not None


def test_an_expired_token_gets_401_at_once(
    client: TestClient, database_url: str, space: Space
) -> None:
    with Store(database_url) as store, store.session() as session:
        token = issue_token(session, name="yesterday", role=Role.ADMIN)
    answer(client.get("/members", headers=bearer(token)))

    with Store(database_url) as store, store.session() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.token_hash == hash_token(token))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    response = client.get("/members", headers=bearer(token))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "expired" in response.json()["detail"]


@pytest.mark.parametrize("days", [0, MAX_LIFETIME_DAYS + 1, "90", 90.0, True], ids=str)
def test_a_token_lifetime_is_a_whole_number_of_days_in_bounds(
    client: TestClient, space: Space, days: object
) -> None:
    response = client.post(
        "/tokens",
        json={"name": "script", "role": "viewer", "expires_in_days": days},
        headers=bearer(space.admin_token),
    )

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "expires_in_days"]


def last_line(text: str) -> str:
    # Alembic's INFO lines come first.
    return text.strip().splitlines()[-1]


def test_varco_gateway_lists_and_revokes_tokens(tmp_path: Path) -> None:
    database = tmp_path / "varco.db"
    created = varco_gateway(
        database, "--create-token", "ops", "--role", "operator", "--expires-in", "7"
    )
    token = created.stdout.strip()

    listed = varco_gateway(database, "--list-tokens")
    revoked = varco_gateway(database, "--revoke-token", "1")
    again = varco_gateway(database, "--revoke-token", "1")
    unknown = varco_gateway(database, "--revoke-token", "9")

    assert created.returncode == 0, created.stderr
    in_a_week = (datetime.now(UTC) + timedelta(days=7)).date().isoformat()
    assert f"valid until {in_a_week}" in created.stderr
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == "id\trole\texpires_at\tstate\tname"
    assert lines[1].split("\t")[:2] == ["1", "operator"]
    assert lines[1].split("\t")[2].startswith(in_a_week)
    assert lines[1].split("\t")[3:] == ["valid", "ops"]
    assert token not in listed.stdout
    assert hash_token(token) not in listed.stdout
    assert (revoked.returncode, last_line(revoked.stderr)) == (0, "token 1 ('ops') revoked.")
    assert holder(database, token) is None
    assert (again.returncode, last_line(again.stderr)) == (
        1,
        "varco gateway: token 1 is already revoked",
    )
    assert (unknown.returncode, last_line(unknown.stderr)) == (1, "varco gateway: no token 9")
    logged = audit_entries(f"sqlite:///{database}")
    assert [(actor, action) for actor, action, _, _ in logged] == [
        ("varco gateway (command line)", AuditAction.CREATE),
        ("varco gateway (command line)", AuditAction.UPDATE),
    ]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--expires-in", "7"], "--expires-in DAYS goes with --create-token"),
        (["--create-admin-token", "a", "--expires-in", "0"], "a token lives 1-3650 days"),
        (["--revoke-token", "0"], "a token id is a positive number"),
        (["--list-tokens", "--revoke-token", "1"], "not allowed with argument"),
    ],
    ids=["expiry-alone", "zero-days", "zero-id", "list-and-revoke"],
)
def test_a_token_command_that_does_not_add_up_is_a_usage_error(
    tmp_path: Path, args: list[str], says: str
) -> None:
    database = tmp_path / "varco.db"

    result = varco_gateway(database, *args)

    assert result.returncode == 2
    assert says in result.stderr
    assert not database.exists()
