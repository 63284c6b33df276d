"""API tokens: who holds one, and `varco gateway --create-token NAME --role ROLE`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import update

from gateway.store import Store
from gateway.store.models import ApiToken, Role
from gateway.store.tokens import Identity, hash_token, identity_of, issue_token
from varco.cli import ROLES


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
    assert f"{role.value} token 'ops' created; it is shown only once." in result.stderr
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
