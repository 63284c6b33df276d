"""The audit log: API changes are logged with who, when, what and how; nothing else is."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from gateway.api import create_app
from gateway.service import Gateway
from gateway.settings import Settings
from gateway.store import Store, audit
from gateway.store.models import AuditAction, AuditEntry, Device, Member, Plan, Role, Zone
from gateway.store.tokens import Identity, identity_of, issue_token
from tests.factories import FRONT_DOOR, SITE, Space, make_space
from varco.demo.space import seed

Headers = dict[str, str]


def bearer(token: str) -> Headers:
    return {"Authorization": f"Bearer {token}"}


def answer(response: httpx.Response, status: int = 200) -> Any:
    request = response.request
    assert response.status_code == status, (
        f"{request.method} {request.url} -> {response.status_code}: {response.text}"
    )
    return response.json()


def issue(database_url: str, name: str, role: Role) -> str:
    with Store(database_url) as store, store.session() as session:
        return issue_token(session, name=name, role=role)


def entries(database_url: str) -> list[AuditEntry]:
    with Store(database_url) as store, store.session() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


@pytest.fixture
def space(database_url: str) -> Space:
    with Store(database_url) as store:
        return make_space(store)


@pytest.fixture
def client(database_url: str, space: Space) -> Iterator[TestClient]:
    gateway = Gateway(Settings(database_url=database_url), ingest=False)
    with TestClient(create_app(gateway), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def admin(space: Space) -> Headers:
    return bearer(space.admin_token)


@pytest.fixture
def operator(database_url: str, space: Space) -> Headers:
    return bearer(issue(database_url, "front desk", Role.OPERATOR))


def test_an_admin_change_is_logged_with_who_what_and_how(
    client: TestClient, admin: Headers, space: Space
) -> None:
    answer(client.post("/zones", json={"id": "attic", "name": "Attic"}, headers=admin), 201)
    before = datetime.now(UTC)
    answer(
        client.patch(
            f"/members/{space.grace}",
            json={"status": "suspended", "name": "Grace B. Hopper"},
            headers=admin,
        )
    )
    after = datetime.now(UTC)

    log = answer(client.get("/audit", headers=admin))

    assert log["total"] == 2
    patched, created = log["items"]  # newest first
    assert {k: v for k, v in patched.items() if k not in ("id", "at")} == {
        "actor": "test admin",
        "actor_role": "admin",
        "action": "update",
        "entity": "member",
        "entity_id": str(space.grace),
        "changes": {
            "name": {"old": "Grace Hopper", "new": "Grace B. Hopper"},
            "status": {"old": "active", "new": "suspended"},
        },
        "details": None,
    }
    at = datetime.fromisoformat(patched["at"])
    assert before <= at <= after
    assert (created["action"], created["entity"], created["entity_id"]) == (
        "create",
        "zone",
        "attic",
    )
    assert created["changes"]["id"] == {"old": None, "new": "attic"}
    assert created["changes"]["name"] == {"old": None, "new": "Attic"}


def test_a_refused_change_logs_nothing(client: TestClient, admin: Headers, space: Space) -> None:
    refused = [
        client.post("/zones", json={"id": "lobby", "name": "Again"}, headers=admin),
        client.patch(f"/members/{space.ada}", json={"plan": "gold"}, headers=admin),
        client.patch(f"/members/{space.ada}", json={"name": "Ada Lovelace"}, headers=admin),
    ]

    assert [r.status_code for r in refused] == [409, 422, 200]  # the last changes nothing
    assert answer(client.get("/audit", headers=admin))["total"] == 0


def test_secrets_never_reach_the_log(client: TestClient, admin: Headers, database_url: str) -> None:
    device = {"id": "door-ctl-9", "site": SITE, "kind": "door_controller", "name": "Attic"}
    answer(client.post("/devices", json=device, headers=admin), 201)
    guest_pass = {
        "guest_name": "Katherine Johnson",
        "event": "Open day",
        "valid_from": "2026-12-01T09:00:00+01:00",
        "valid_until": "2026-12-01T18:00:00+01:00",
        "doors": [FRONT_DOOR],
    }
    code = answer(client.post("/passes", json=guest_pass, headers=admin), 201)["code"]
    with Store(database_url) as store, store.session() as session:
        row = session.get(Device, "door-ctl-9")
        assert row is not None
        columns = [c.key for c in Device.__mapper__.column_attrs if audit.SECRET.search(c.key)]
        secrets = [code, *(getattr(row, key) for key in columns if getattr(row, key))]
    assert "allowlist_key" in columns

    response = client.get("/audit", headers=admin)

    logged = {entry["entity"]: entry for entry in answer(response)["items"]}
    assert logged["device"]["changes"]["name"] == {"old": None, "new": "Attic"}
    assert logged["guest_pass"]["changes"]["guest_name"]["new"] == "Katherine Johnson"
    for entry in logged.values():
        assert [k for k in entry["changes"] if audit.SECRET.search(k)] == []
    for secret in secrets:
        assert secret not in response.text


def test_only_admins_and_operators_read_the_log(
    client: TestClient, admin: Headers, operator: Headers, space: Space
) -> None:
    answer(client.post("/zones", json={"id": "attic", "name": "Attic"}, headers=admin), 201)

    by_operator = client.get("/audit", headers=operator)
    by_viewer = client.get("/audit", headers=bearer(space.viewer_token))
    by_nobody = client.get("/audit")

    assert answer(by_operator)["total"] == 1
    assert (by_viewer.status_code, by_viewer.json()["detail"]) == (
        403,
        "role 'viewer' may not do this",
    )
    assert (by_nobody.status_code, by_nobody.headers["WWW-Authenticate"]) == (401, "Bearer")


def test_the_log_filters_by_entity_actor_action_and_time(
    client: TestClient, admin: Headers, space: Space, database_url: str
) -> None:
    other = bearer(issue(database_url, "second admin", Role.ADMIN))
    answer(client.post("/zones", json={"id": "attic", "name": "Attic"}, headers=admin), 201)
    answer(client.patch(f"/members/{space.grace}", json={"status": "suspended"}, headers=admin))
    middle = datetime.now(UTC)
    answer(client.patch(f"/members/{space.ada}", json={"name": "Ada King"}, headers=other))
    answer(client.post("/zones", json={"id": "cellar", "name": "Cellar"}, headers=other), 201)

    queries: dict[str, dict[str, Any]] = {
        "all": {},
        "zones": {"entity": "zone"},
        "grace": {"entity": "member", "entity_id": str(space.grace)},
        "second admin": {"actor": "second admin"},
        "updates": {"action": "update"},
        "since the middle": {"since": middle.isoformat()},
        "until the middle": {"until": middle.isoformat()},
        "second page": {"limit": 1, "offset": 1},
        "nobody": {"actor": "nobody"},
    }
    pages = {
        name: answer(client.get("/audit", params=q, headers=admin)) for name, q in queries.items()
    }

    def what(page: dict[str, Any]) -> list[str]:
        return [f"{e['action']} {e['entity']} {e['entity_id']}" for e in page["items"]]

    grace, ada = f"update member {space.grace}", f"update member {space.ada}"
    assert {name: (what(page), page["total"]) for name, page in pages.items()} == {
        "all": (["create zone cellar", ada, grace, "create zone attic"], 4),
        "zones": (["create zone cellar", "create zone attic"], 2),
        "grace": ([grace], 1),
        "second admin": (["create zone cellar", ada], 2),
        "updates": ([ada, grace], 2),
        "since the middle": (["create zone cellar", ada], 2),
        "until the middle": ([grace, "create zone attic"], 2),
        "second page": ([ada], 4),
        "nobody": ([], 0),
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "2025-03-03T09:00:00"}, "query.since"),
        ({"until": "yesterday"}, "query.until"),
        ({"action": "rename"}, "query.action"),
        ({"entity": "Zone;"}, "query.entity"),
        ({"actor": "ops\x00"}, "query.actor"),
        ({"entity_id": ""}, "query.entity_id"),
    ],
)
def test_bad_filters_are_refused(
    client: TestClient, admin: Headers, params: dict[str, str], field: str
) -> None:
    response = client.get("/audit", params=params, headers=admin)

    assert response.status_code == 422
    assert field in {".".join(map(str, e["loc"])) for e in response.json()["detail"]}


def test_writes_outside_the_api_are_not_logged(database_url: str) -> None:
    with Store(database_url) as store:
        seed(store)
        with store.session() as session:
            session.add(Zone(id="attic", name="Attic"))
            member = session.scalars(select(Member)).first()
            assert member is not None
            member.name = "Someone else"
        with store.session() as session:
            assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def acting(store: Store, role: Role = Role.ADMIN) -> Identity:
    with store.session() as session:
        token = issue_token(session, name="script", role=role)
    with store.session() as session:
        identity = identity_of(session, token)
    assert identity is not None
    return identity


def test_a_collection_change_logs_the_related_ids(database_url: str, space: Space) -> None:
    with Store(database_url) as store:
        actor = acting(store)
        with store.session() as session:
            audit.set_actor(session, actor)
            plan = session.get(Plan, "hot-desk")
            offices = session.get(Zone, "offices")
            assert plan is not None
            assert offices is not None
            plan.zones.append(offices)

    [entry] = entries(database_url)
    assert (entry.action, entry.entity, entry.entity_id) == (
        AuditAction.UPDATE,
        "plan",
        "hot-desk",
    )
    assert entry.changes == {"zones": {"old": ["lobby"], "new": ["lobby", "offices"]}}


def test_a_delete_logs_the_old_values(database_url: str, space: Space) -> None:
    with Store(database_url) as store:
        actor = acting(store)
        with store.session() as session:
            session.add(Zone(id="attic", name="Attic"))
        with store.session() as session:
            audit.set_actor(session, actor)
            zone = session.get(Zone, "attic")
            session.delete(zone)

    [entry] = entries(database_url)
    assert (entry.actor, entry.action, entry.entity, entry.entity_id) == (
        "script",
        AuditAction.DELETE,
        "zone",
        "attic",
    )
    assert entry.changes["name"] == {"old": "Attic", "new": None}


def test_record_logs_a_command_for_the_actor_only(database_url: str, space: Space) -> None:
    with Store(database_url) as store:
        actor = acting(store, Role.OPERATOR)
        with store.session() as session:
            audit.record(
                session,
                action=AuditAction.COMMAND,
                entity="door",
                entity_id="front-door",
                details={"command": "unlock", "seconds": 5},
            )
        with store.session() as session:
            audit.set_actor(session, actor)
            audit.record(
                session,
                action=AuditAction.COMMAND,
                entity="door",
                entity_id="front-door",
                details={"command": "unlock", "seconds": 5},
            )

    [entry] = entries(database_url)
    assert (entry.actor, entry.actor_role, entry.token_id) == (
        "script",
        Role.OPERATOR,
        actor.token_id,
    )
    assert (entry.action, entry.entity, entry.entity_id, entry.changes, entry.details) == (
        AuditAction.COMMAND,
        "door",
        "front-door",
        {},
        {"command": "unlock", "seconds": 5},
    )
