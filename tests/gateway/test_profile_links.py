"""A member sets their own profile and board consent through the link an admin sends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import update

from gateway.api import create_app
from gateway.service import Gateway
from gateway.settings import Settings
from gateway.store import Store
from gateway.store.models import ProfileLink
from tests.factories import Space
from tests.gateway.conftest import Headers
from tests.gateway.test_api import answer, bearer

PROFILE = {
    "opt_in": True,
    "display_name": "Grace",
    "profession": "Rear admiral",
    "skills": ["COBOL"],
    "ask_me_about": "Compilers",
}


def link(client: TestClient, admin: Headers, member: int, **body: Any) -> tuple[str, Any]:
    made = answer(client.post(f"/members/{member}/profile-link", json=body, headers=admin))
    path, _, token = made["url"].partition("#")
    assert path == "/me"
    return token, made


def test_a_member_opts_in_through_their_link_and_the_consent_is_kept(
    client: TestClient, admin: Headers, space: Space, gateway: Gateway
) -> None:
    token, made = link(client, admin, space.grace)
    mine = answer(client.get("/me/profile", headers=bearer(token)))
    before = datetime.now(UTC)
    saved = answer(client.put("/me/profile", json=PROFILE, headers=bearer(token)))
    seen_by_admin = answer(client.get(f"/members/{space.grace}/profile", headers=admin))

    assert token.startswith("vm_")
    expires = datetime.fromisoformat(made["expires_at"])
    assert timedelta(hours=47) < expires - before < timedelta(hours=49)
    assert (mine["name"], mine["opt_in"], mine["consent_at"]) == ("Grace Hopper", False, None)
    assert saved["consent_via"] == "profile link"
    assert before <= datetime.fromisoformat(saved["consent_at"]) <= datetime.now(UTC)
    assert seen_by_admin == {k: v for k, v in saved.items() if k != "name"}


def test_opting_out_withdraws_the_consent(client: TestClient, admin: Headers, space: Space) -> None:
    token, _ = link(client, admin, space.grace)
    answer(client.put("/me/profile", json=PROFILE, headers=bearer(token)))
    out = answer(client.put("/me/profile", json={"opt_in": False}, headers=bearer(token)))

    assert (out["opt_in"], out["consent_at"], out["consent_via"]) == (False, None, None)


def test_an_admin_who_opts_a_member_in_is_named_as_the_one_who_recorded_it(
    client: TestClient, admin: Headers, space: Space
) -> None:
    saved = answer(client.put(f"/members/{space.ada}/profile", json=PROFILE, headers=admin))

    assert saved["consent_via"] == "admin test admin"
    assert saved["consent_at"] is not None


def test_an_expired_or_replaced_link_or_an_api_token_opens_nothing(
    client: TestClient, admin: Headers, space: Space, database_url: str
) -> None:
    old, _ = link(client, admin, space.grace)
    new, _ = link(client, admin, space.grace, expires_in_hours=1)
    expired, _ = link(client, admin, space.ada)
    with Store(database_url) as store, store.session() as session:
        past = datetime.now(UTC) - timedelta(seconds=1)
        session.execute(
            update(ProfileLink).where(ProfileLink.member_id == space.ada).values(expires_at=past)
        )
    answers: dict[str, httpx.Response] = {
        "replaced": client.get("/me/profile", headers=bearer(old)),
        "expired": client.put("/me/profile", json=PROFILE, headers=bearer(expired)),
        "api token": client.put("/me/profile", json=PROFILE, headers=admin),
        "none": client.put("/me/profile", json=PROFILE),
        "link as api token": client.get("/members", headers=bearer(new)),
        "too long": client.post(
            f"/members/{space.ada}/profile-link", json={"expires_in_hours": 24 * 8}, headers=admin
        ),
    }

    assert {name: r.status_code for name, r in answers.items()} == {
        "replaced": 401,
        "expired": 401,
        "api token": 401,
        "none": 401,
        "link as api token": 401,
        "too long": 422,
    }
    assert answer(client.get("/me/profile", headers=bearer(new)))["name"] == "Grace Hopper"
    assert answer(client.get(f"/members/{space.ada}/profile", headers=admin))["opt_in"] is False


def test_a_link_with_the_public_url_is_whole(
    database_url: str, space: Space, admin: Headers
) -> None:
    settings = Settings(database_url=database_url, public_url="https://varco.example.org")
    with TestClient(create_app(Gateway(settings, ingest=False))) as client:
        made = answer(client.post(f"/members/{space.ada}/profile-link", json={}, headers=admin))

    assert made["url"].startswith("https://varco.example.org/me#vm_")
