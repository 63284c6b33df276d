"""The admin API as an admin sees it: the real app and lifespan, on SQLite and on PostgreSQL."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from gateway.access import Policy, Verdict, decide
from gateway.api import create_app
from gateway.service import Gateway
from gateway.settings import Settings
from gateway.store import Store
from gateway.store.models import ApiToken, GuestPass, Member, Role
from gateway.store.records import insert_new, record_offline_taps, set_aside
from gateway.store.tokens import hash_token, issue_token
from gateway.store.writer import Record
from tests.factories import (
    DOOR_DEVICE,
    FRONT_DOOR,
    OFFICE_DOOR,
    SITE,
    Space,
    make_space,
)
from tests.factories import access_row as ada_tap
from varco import protocol
from varco.protocol import Credential, Reason

Headers = dict[str, str]

# A valid body for each create, and every endpoint that needs a token as the schema names it.
ZONE = {"id": "attic", "name": "Attic"}
PLAN = {"id": "attic-only", "name": "Attic only", "zones": ["lobby"]}
DEVICE = {"id": "door-ctl-9", "site": SITE, "kind": "door_controller"}
DOOR = {"id": "attic-door", "name": "Attic", "zone": "lobby"}
MEMBER = {"name": "Barbara Liskov", "plan": "hot-desk"}
BADGE: dict[str, Any] = {"uid": "04C3D4E5F6", "member_id": 1}
SITE_BODY = {"id": "annex", "name": "Annex", "timezone": "Europe/Rome"}
CLOSURE = {
    "name": "Christmas",
    "starts_at": "2026-12-24T18:00:00+01:00",
    "ends_at": "2026-12-27T08:00:00+01:00",
}
GUEST_PASS = {
    "guest_name": "Katherine Johnson",
    "event": "Open day",
    "valid_from": "2026-12-01T09:00:00+01:00",
    "valid_until": "2026-12-01T18:00:00+01:00",
    "doors": [FRONT_DOOR],
}
LISTS = [
    "/sites",
    "/zones",
    "/plans",
    "/devices",
    "/doors",
    "/members",
    "/badges",
    "/passes",
    "/closures",
    "/access-events",
    "/desks",
]
READS = [
    *LISTS,
    "/members/{member_id}",
    "/members/{member_id}/profile",
    "/plans/{plan_id}",
    "/devices/{device_id}",
    "/reports/usage",
    "/members/export",
    "/devices/{device_id}/overrides",
]
# The live page's API answers anyone in the space: it shows nothing private.
PUBLIC = ["/healthz", "/live/state", "/live/board", "/live/events"]
# Reads for admins and operators only (tests/gateway/test_audit.py checks the viewer's 403).
OPERATOR_READS = ["/audit", "/set-aside-records"]
# Reads for admins only (tests/gateway/test_tokens.py and test_device_config.py check the
# others' 403).
ADMIN_READS = ["/tokens", "/devices/{device_id}/config"]
WRITES: dict[tuple[str, str], dict[str, Any] | None] = {
    ("POST", "/zones"): ZONE,
    ("POST", "/plans"): PLAN,
    ("POST", "/devices"): DEVICE,
    ("POST", "/devices/{device_id}/revoke"): None,
    ("POST", "/doors"): DOOR,
    ("POST", "/members"): MEMBER,
    ("PATCH", "/members/{member_id}"): {"status": "suspended"},
    ("POST", "/badges"): BADGE,
    ("PATCH", "/badges/{badge_id}"): {"active": False},
    ("POST", "/sites"): SITE_BODY,
    ("PATCH", "/sites/{site_id}"): {"name": "Renamed"},
    ("PATCH", "/plans/{plan_id}"): {"name": "Hot desk plus"},
    ("PATCH", "/zones/{zone_id}"): {"anti_passback": True},
    ("PATCH", "/doors/{door_id}"): {"unlock_seconds": 4},
    ("POST", "/doors/{door_id}/unlock"): {},
    ("PUT", "/{scope}/{item_id}/lockdown"): None,
    ("DELETE", "/{scope}/{item_id}/lockdown"): None,
    ("POST", "/closures"): CLOSURE,
    ("DELETE", "/closures/{closure_id}"): None,
    ("POST", "/passes"): GUEST_PASS,
    ("POST", "/passes/{pass_id}/revoke"): None,
    ("POST", "/desks"): {"id": "desk-9", "name": "Desk 9", "zone": "lobby"},
    ("PUT", "/members/{member_id}/profile"): {"opt_in": True, "skills": ["VAT"]},
    ("POST", "/tokens"): {"name": "script", "role": "viewer"},
    ("DELETE", "/tokens/{token_id}"): None,
    ("DELETE", "/members/{member_id}"): None,
    ("POST", "/members/{member_id}/erase"): None,
    ("DELETE", "/badges/{badge_id}"): None,
    ("DELETE", "/doors/{door_id}"): None,
    ("DELETE", "/zones/{zone_id}"): None,
    ("DELETE", "/plans/{plan_id}"): None,
    ("DELETE", "/desks/{desk_id}"): None,
    ("DELETE", "/devices/{device_id}"): None,
    ("POST", "/members/import"): None,
    ("POST", "/members/{member_id}/profile-link"): {},
    ("PUT", "/devices/{device_id}/overrides"): {"log_level": "DEBUG"},
    ("DELETE", "/devices/{device_id}/overrides"): None,
}
# A member's own page's API: a profile link's token, not an API token (test_profile_links.py).
MEMBER_LINK = {("GET", "/me/profile"), ("PUT", "/me/profile")}


def bearer(token: str) -> Headers:
    return {"Authorization": f"Bearer {token}"}


def answer(response: httpx.Response, status: int = 200) -> Any:
    """Return the JSON body of ``response`` after checking its status."""
    request = response.request
    assert response.status_code == status, (
        f"{request.method} {request.url} -> {response.status_code}: {response.text}"
    )
    return response.json()


def reason(response: httpx.Response) -> str:
    """Flatten ``detail`` to one line: the message, or each validation error with its field."""
    detail = response.json()["detail"]
    if isinstance(detail, str):
        return detail
    return "; ".join(f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in detail)


def ids(page: dict[str, Any], key: str = "id") -> list[Any]:
    return [item[key] for item in page["items"]]


def aware(text: str) -> datetime:
    """Parse an ISO time from a response, insisting that it carries an offset."""
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None, f"{text} has no offset"
    return value


@pytest.fixture
def space(database_url: str) -> Space:
    with Store(database_url) as store:
        return make_space(store)


@pytest.fixture
def gateway(database_url: str, space: Space) -> Gateway:
    return Gateway(Settings(database_url=database_url), ingest=False)


@pytest.fixture
def client(gateway: Gateway) -> Iterator[TestClient]:
    # A crash comes back as the 500 a client gets, so "never a 5xx" is asserted, not raised.
    with TestClient(create_app(gateway), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def admin(space: Space) -> Headers:
    return bearer(space.admin_token)


@pytest.fixture
def viewer(space: Space) -> Headers:
    return bearer(space.viewer_token)


def grace_badge_id(client: TestClient, admin: Headers, space: Space) -> int:
    page = answer(client.get("/badges", params={"member_id": space.grace}, headers=admin))
    badge_ids = {badge["uid"]: badge["id"] for badge in page["items"]}
    badge_id: int = badge_ids[space.GRACE_BADGE]
    return badge_id


def concrete(path: str, space: Space, badge_id: int) -> str:
    return path.format(
        member_id=space.grace,
        badge_id=badge_id,
        device_id=DOOR_DEVICE,
        plan_id="hot-desk",
        zone_id="lobby",
        door_id=FRONT_DOOR,
        site_id=SITE,
        scope="doors",
        item_id=FRONT_DOOR,
        closure_id=1,
        pass_id=1,
        token_id=2,
        desk_id="desk-1",
    )


def test_healthz_answers_without_a_token(client: TestClient) -> None:
    health = answer(client.get("/healthz"))

    assert health["status"] == "ok"
    assert health["database"] is True
    assert health["mqtt_connected"] is False
    assert health["policy_version"] >= 1
    assert health["writer_depth"] == 0


def test_healthz_says_degraded_naming_a_background_task_that_died(
    database_url: str, space: Space, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def dies(self: object) -> None:
        raise RuntimeError("snapshot query broke")

    monkeypatch.setattr("gateway.live.LiveHub.run", dies)
    gateway = Gateway(Settings(database_url=database_url), ingest=False)
    with TestClient(create_app(gateway)) as client:
        response = client.get("/healthz")
        for _ in range(50):  # the task dies on its first step; give the loop a moment
            if response.status_code == 503:
                break
            time.sleep(0.02)
            response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["status"] == "degraded"
    assert response.json()["failed_tasks"] == {"live": "RuntimeError: snapshot query broke"}


def test_healthz_says_degraded_while_the_writer_holds_records_it_cannot_commit(
    tmp_path: Path,
) -> None:
    database = tmp_path / "varco.db"
    with Store(f"sqlite:///{database}") as store:
        make_space(store)
    gateway = Gateway(Settings(database_url=f"sqlite:///{database}"), ingest=False)
    gateway.writer.stall_seconds = 0.3
    with TestClient(create_app(gateway)) as client:
        locker = sqlite3.connect(database, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # the database holds every writer off
        try:
            assert client.portal is not None
            client.portal.call(gateway.writer.submit, Record("access", ada_tap("e-held", T0)))
            time.sleep(0.6)
            stalled = client.get("/healthz")
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        client.portal.call(gateway.writer.join)
        recovered = client.get("/healthz")

    assert (stalled.status_code, stalled.json()["status"]) == (503, "degraded")
    assert (stalled.json()["writer_stalled"], stalled.json()["writer_depth"]) == (True, 1)
    assert (recovered.status_code, recovered.json()["writer_stalled"]) == (200, False)
    assert recovered.json()["writer"]["committed"] == 1


def test_set_aside_records_are_listed_redacted_for_admins_and_operators(
    client: TestClient, admin: Headers, viewer: Headers, gateway: Gateway, space: Space
) -> None:
    row = {**ada_tap("e-odd", T0), "door_id": "x" * 80}
    with gateway.store.session() as session:
        set_aside(session, "access", row, "refused by the database: value too long")
        session.add(Member(name="Irrelevant", plan_id="hot-desk"))  # not a set-aside record

    page = answer(client.get("/set-aside-records", headers=admin))
    refused = client.get("/set-aside-records", headers=viewer)

    [item] = page["items"]
    assert (page["total"], item["kind"], item["event_id"]) == (1, "access", "e-odd")
    assert item["reason"] == "refused by the database: value too long"
    assert item["row"]["credential"] == "<redacted>"
    assert space.ADA_BADGE not in str(page)
    assert refused.status_code == 403


def test_every_endpoint_but_healthz_is_covered_here(client: TestClient) -> None:
    schema = answer(client.get("/openapi.json"))
    served = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
    }

    reads = {("GET", path) for path in [*READS, *OPERATOR_READS, *ADMIN_READS]}
    assert served == {("GET", path) for path in PUBLIC} | reads | set(WRITES) | MEMBER_LINK


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer vk_not-a-real-token", "Basic YWRtaW46YWRtaW4=", "vk_no-scheme"],
    ids=["no-token", "wrong-token", "basic-auth", "no-scheme"],
)
def test_every_endpoint_but_healthz_needs_a_valid_token(
    client: TestClient, admin: Headers, space: Space, authorization: str | None
) -> None:
    badge_id = grace_badge_id(client, admin, space)
    headers = {} if authorization is None else {"Authorization": authorization}
    requests = [("GET", path, None) for path in [*READS, *OPERATOR_READS, *ADMIN_READS]] + [
        (method, path, body) for (method, path), body in WRITES.items()
    ]

    answers = {}
    for method, path, body in requests:
        response = client.request(
            method, concrete(path, space, badge_id), json=body, headers=headers
        )
        answers[method, path] = (response.status_code, response.headers.get("WWW-Authenticate"))

    assert answers == {(method, path): (401, "Bearer") for method, path, _ in requests}


def test_a_revoked_token_is_refused(
    client: TestClient, database_url: str, admin: Headers, space: Space
) -> None:
    with Store(database_url) as store, store.session() as session:
        token = issue_token(session, name="former admin", role=Role.ADMIN)
    answer(client.get("/members", headers=bearer(token)))

    with Store(database_url) as store, store.session() as session:
        session.execute(
            update(ApiToken).where(ApiToken.token_hash == hash_token(token)).values(revoked=True)
        )
    response = client.get("/members", headers=bearer(token))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "revoked" in reason(response)
    answer(client.get("/members", headers=admin))  # the other tokens still work


def test_a_viewer_reads_everything_and_changes_nothing(
    client: TestClient, admin: Headers, viewer: Headers, space: Space
) -> None:
    badge_id = grace_badge_id(client, admin, space)
    before = {path: answer(client.get(path, headers=admin)) for path in LISTS}

    reads = {path: client.get(concrete(path, space, badge_id), headers=viewer) for path in READS}
    writes = {
        (method, path): client.request(
            method, concrete(path, space, badge_id), json=body, headers=viewer
        )
        for (method, path), body in WRITES.items()
    }

    assert {path: r.status_code for path, r in reads.items()} == dict.fromkeys(READS, 200)
    assert {key: r.status_code for key, r in writes.items()} == dict.fromkeys(WRITES, 403)
    assert {key: reason(r) for key, r in writes.items()} == dict.fromkeys(
        WRITES, "role 'viewer' may not do this"
    )
    assert {path: answer(client.get(path, headers=admin)) for path in LISTS} == before


def test_an_admin_sets_up_a_meeting_room_for_a_new_member(
    client: TestClient, admin: Headers
) -> None:
    def post(path: str, body: dict[str, Any]) -> Any:
        return answer(client.post(path, json=body, headers=admin), 201)

    zone = post("/zones", {"id": "meeting-rooms", "name": "Meeting rooms"})
    plan = post(
        "/plans",
        {"id": "meetings", "name": "Meetings", "zones": ["meeting-rooms", "lobby", "lobby"]},
    )
    device = post(
        "/devices",
        {"id": "door-ctl-2", "site": SITE, "kind": "door_controller", "name": "Meeting rooms"},
    )
    door = post(
        "/doors",
        {
            "id": "meeting-door",
            "name": "Meeting rooms",
            "zone": "meeting-rooms",
            "device": "door-ctl-2",
            "unlock_seconds": 3,
        },
    )
    member = post(
        "/members",
        {"name": "Margaret Hamilton", "email": "margaret@example.org", "plan": "meetings"},
    )
    badge = post("/badges", {"uid": "04c3d4e5f6", "member_id": member["id"]})

    assert zone == {
        "id": "meeting-rooms",
        "name": "Meeting rooms",
        "anti_passback": False,
        "locked_down": False,
    }
    assert plan == {
        "id": "meetings",
        "name": "Meetings",
        "zones": ["lobby", "meeting-rooms"],
        "windows": [],
        "open_on_closures": False,
    }
    assert {key: device[key] for key in ("id", "site", "kind", "name", "state", "software")} == {
        "id": "door-ctl-2",
        "site": SITE,
        "kind": "door_controller",
        "name": "Meeting rooms",
        "state": None,
        "software": None,
    }
    # Without VARCO_PROVISIONING=dynsec the broker is open: no account, a config without one.
    assert (device["revoked"], device["mqtt_username"], device["mqtt_password"]) == (
        False,
        None,
        None,
    )
    assert f'allowlist_key: "{device["allowlist_key"]}"' in device["config_yaml"]
    assert door == {
        "id": "meeting-door",
        "name": "Meeting rooms",
        "zone": "meeting-rooms",
        "device": "door-ctl-2",
        "unlock_seconds": 3.0,
        "direction": "in",
        "locked_down": False,
        "open_windows": [],
        "open_after_first_entry": False,
        "reader_kind": None,
        "state": None,
    }
    assert {key: member[key] for key in ("name", "email", "plan", "status")} == {
        "name": "Margaret Hamilton",
        "email": "margaret@example.org",
        "plan": "meetings",
        "status": "active",
    }
    assert {key: badge[key] for key in ("uid", "member_id", "active")} == {
        "uid": "04C3D4E5F6",
        "member_id": member["id"],
        "active": True,
    }
    now = datetime.now(UTC)
    for created in (device, member, badge):
        assert abs(aware(created["created_at"]) - now) < timedelta(minutes=1)

    def listed(path: str, **params: Any) -> Any:
        return answer(client.get(path, params=params, headers=admin))

    zones = listed("/zones")
    assert ids(zones) == ["lobby", "meeting-rooms", "offices"]
    assert (zones["total"], zones["limit"], zones["offset"]) == (3, 50, 0)
    assert ids(listed("/plans")) == ["hot-desk", "meetings", "private-office"]
    assert ids(listed("/devices")) == [DOOR_DEVICE, "door-ctl-2"]
    assert ids(listed("/doors")) == [FRONT_DOOR, "meeting-door", OFFICE_DOOR]
    assert listed("/doors", limit=1, offset=1)["items"] == [door]
    members = listed("/members")
    assert members["total"] == 4
    assert members["items"][-1] == member
    assert listed("/members", plan="meetings")["items"] == [member]
    assert listed("/badges", member_id=member["id"])["items"] == [
        {key: value for key, value in badge.items() if key != "warnings"}
    ]
    assert answer(client.get(f"/members/{member['id']}", headers=admin)) == member

    suspended = answer(
        client.patch(f"/members/{member['id']}", json={"status": "suspended"}, headers=admin)
    )
    assert suspended == {**member, "status": "suspended"}
    assert answer(client.get(f"/members/{member['id']}", headers=admin)) == suspended
    assert ids(listed("/members", status="suspended"), "name") == [
        "Linus Torvalds",
        "Margaret Hamilton",
    ]

    revoked = answer(client.patch(f"/badges/{badge['id']}", json={"active": False}, headers=admin))
    assert {**revoked, "warnings": []} == {**badge, "active": False}
    assert listed("/badges", member_id=member["id"])["items"] == [revoked]


@pytest.mark.parametrize(
    ("path", "total"),
    [("/zones", 2), ("/plans", 2), ("/devices", 1), ("/doors", 2), ("/members", 3), ("/badges", 4)],
)
def test_a_list_pages_through_every_item_once(
    client: TestClient, admin: Headers, path: str, total: int
) -> None:
    everything = answer(client.get(path, params={"limit": 500}, headers=admin))
    assert everything["total"] == len(everything["items"]) == total

    pages = [
        answer(client.get(path, params={"limit": 1, "offset": offset}, headers=admin))
        for offset in range(total + 1)
    ]

    assert [page["items"] for page in pages] == [[item] for item in everything["items"]] + [[]]
    assert [(page["total"], page["limit"], page["offset"]) for page in pages] == [
        (total, 1, offset) for offset in range(total + 1)
    ]


def test_every_list_refuses_a_bad_page(client: TestClient, admin: Headers) -> None:
    bad = [{"limit": 0}, {"limit": 501}, {"offset": -1}, {"limit": "ten"}]

    answers = {
        (path, str(params)): client.get(path, params=params, headers=admin)
        for path in LISTS
        for params in bad
    }

    assert {key: r.status_code for key, r in answers.items()} == dict.fromkeys(answers, 422)
    for (_, params), response in answers.items():
        assert ("limit" if "limit" in params else "offset") in reason(response)


MALFORMED = b'{"id": "attic", "name": '
BODY = "body: Input should be a valid dictionary"
NAIVE = "2025-03-03T09:00:00"

# name: (method, path, body, status, what the detail says); bytes are sent as they are.
BAD_INPUT: dict[str, tuple[str, str, Any, int, str]] = {
    "zone-unknown-field": ("POST", "/zones", {**ZONE, "floor": 3}, 422, "body.floor: Extra"),
    "zone-id-uppercase": ("POST", "/zones", {**ZONE, "id": "Attic"}, 422, "body.id: String"),
    "zone-id-slash": ("POST", "/zones", {**ZONE, "id": "attic/2"}, 422, "body.id: String"),
    "zone-id-newline": ("POST", "/zones", {**ZONE, "id": "attic\n"}, 422, "body.id: String"),
    "zone-id-too-long": ("POST", "/zones", {**ZONE, "id": "a" * 65}, 422, "body.id: String"),
    "zone-duplicate": ("POST", "/zones", {**ZONE, "id": "lobby"}, 409, "zone 'lobby' already"),
    "zone-name-empty": ("POST", "/zones", {**ZONE, "name": ""}, 422, "body.name: String"),
    "zone-name-a-number": ("POST", "/zones", {**ZONE, "name": 42}, 422, "body.name: Input"),
    "zone-body-a-list": ("POST", "/zones", ["attic", "Attic"], 422, BODY),
    "zone-no-body": ("POST", "/zones", None, 422, "body: Field required"),
    "zone-malformed-json": ("POST", "/zones", MALFORMED, 422, "JSON decode error"),
    "plan-duplicate": ("POST", "/plans", {**PLAN, "id": "hot-desk"}, 409, "plan 'hot-desk'"),
    "plan-unknown-zone": ("POST", "/plans", {**PLAN, "zones": ["attic"]}, 422, "zones: no zone"),
    "plan-zones-a-string": ("POST", "/plans", {**PLAN, "zones": "lobby"}, 422, "body.zones"),
    "plan-zone-uppercase": ("POST", "/plans", {**PLAN, "zones": ["Lobby"]}, 422, "body.zones.0"),
    "plan-id-slash": ("POST", "/plans", {**PLAN, "id": "gold/1"}, 422, "body.id: String"),
    "plan-malformed-json": ("POST", "/plans", MALFORMED, 422, "JSON decode error"),
    "device-duplicate": ("POST", "/devices", {**DEVICE, "id": DOOR_DEVICE}, 409, DOOR_DEVICE),
    "device-unknown-kind": ("POST", "/devices", {**DEVICE, "kind": "toaster"}, 422, "body.kind"),
    "device-id-uppercase": ("POST", "/devices", {**DEVICE, "id": "Door-9"}, 422, "body.id"),
    "device-site-spaces": ("POST", "/devices", {**DEVICE, "site": "Test Site"}, 422, "body.site"),
    "device-unknown-field": ("POST", "/devices", {**DEVICE, "ip": "10.0.0.9"}, 422, "body.ip"),
    "door-duplicate": ("POST", "/doors", {**DOOR, "id": FRONT_DOOR}, 409, f"door '{FRONT_DOOR}'"),
    "door-unknown-zone": ("POST", "/doors", {**DOOR, "zone": "attic"}, 422, "zone: no zone"),
    "door-no-device": ("POST", "/doors", {**DOOR, "device": "ctl-9"}, 422, "device: no dev"),
    "door-unlock-zero": ("POST", "/doors", {**DOOR, "unlock_seconds": 0}, 422, "unlock_seconds"),
    "door-unlock-text": ("POST", "/doors", {**DOOR, "unlock_seconds": "5s"}, 422, "unlock_seconds"),
    "door-id-slash": ("POST", "/doors", {**DOOR, "id": "attic/door"}, 422, "body.id: String"),
    "door-unknown-field": ("POST", "/doors", {**DOOR, "lock": "magnetic"}, 422, "body.lock"),
    "member-unknown-plan": ("POST", "/members", {**MEMBER, "plan": "gold"}, 422, "plan: no plan"),
    "member-no-plan": ("POST", "/members", {"name": "Barbara"}, 422, "body.plan: Field required"),
    "member-bad-email": ("POST", "/members", {**MEMBER, "email": "barbara"}, 422, "body.email"),
    "member-status": ("POST", "/members", {**MEMBER, "status": "banned"}, 422, "body.status"),
    "member-unknown-field": ("POST", "/members", {**MEMBER, "role": "admin"}, 422, "body.role"),
    "member-name-a-list": ("POST", "/members", {**MEMBER, "name": ["B"]}, 422, "body.name"),
    "member-malformed-json": ("POST", "/members", MALFORMED, 422, "JSON decode error"),
    "member-missing": ("GET", "/members/999999", None, 404, "no member 999999"),
    "member-id-a-word": ("GET", "/members/ada", None, 422, "path.member_id"),
    "patch-missing-member": ("PATCH", "/members/999999", {}, 404, "no member 999999"),
    "patch-member-field": ("PATCH", "/members/1", {"active": False}, 422, "body.active: Extra"),
    "patch-member-status": ("PATCH", "/members/1", {"status": "banned"}, 422, "body.status"),
    "patch-member-malformed": ("PATCH", "/members/1", MALFORMED, 422, "JSON decode error"),
    "members-by-status": ("GET", "/members?status=banned", None, 422, "query.status"),
    "badge-no-member": ("POST", "/badges", {**BADGE, "member_id": 999999}, 422, "member_id: no"),
    "badge-member-zero": ("POST", "/badges", {**BADGE, "member_id": 0}, 422, "body.member_id"),
    "badge-member-text": ("POST", "/badges", {**BADGE, "member_id": "ada"}, 422, "body.member_id"),
    "badge-uid-not-hex": ("POST", "/badges", {**BADGE, "uid": "ZZ12AB34"}, 422, "body.uid: String"),
    "badge-uid-too-short": ("POST", "/badges", {**BADGE, "uid": "04A"}, 422, "body.uid: String"),
    "badge-unknown-field": ("POST", "/badges", {**BADGE, "pin": "1234"}, 422, "body.pin: Extra"),
    "patch-missing-badge": ("PATCH", "/badges/999999", {"active": False}, 404, "no badge 999999"),
    "patch-badge-a-word": ("PATCH", "/badges/1", {"active": "maybe"}, 422, "body.active"),
    "patch-badge-empty": ("PATCH", "/badges/1", {}, 422, "body.active: Field required"),
    "badges-by-member": ("GET", "/badges?member_id=ada", None, 422, "query.member_id"),
    "events-naive-since": ("GET", f"/access-events?since={NAIVE}", None, 422, "query.since"),
    "events-naive-until": ("GET", f"/access-events?until={NAIVE}", None, 422, "query.until"),
    "events-since-a-word": ("GET", "/access-events?since=yesterday", None, 422, "query.since"),
    "events-by-result": ("GET", "/access-events?result=maybe", None, 422, "query.result"),
    "events-by-member-zero": ("GET", "/access-events?member_id=0", None, 422, "query.member_id"),
}


def test_bad_input_is_refused_with_its_reason(client: TestClient, admin: Headers) -> None:
    answers = {}
    for name, (method, path, body, _, says) in BAD_INPUT.items():
        if isinstance(body, bytes):
            headers = {**admin, "Content-Type": "application/json"}
            response = client.request(method, path, content=body, headers=headers)
        else:
            response = client.request(method, path, json=body, headers=admin)
        said = reason(response) if response.status_code < 500 else response.text
        answers[name] = (response.status_code, says if says in said else said)

    assert answers == {name: (status, says) for name, (*_, status, says) in BAD_INPUT.items()}


# Input that passes validation but reaches the database in a form the database cannot take.
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("GET", "/members/2147483648", None, id="member-id-above-int32"),
        pytest.param("GET", "/members/9223372036854775808", None, id="member-id-above-int64"),
        pytest.param(
            "PATCH",
            "/members/9223372036854775808",
            {"status": "suspended"},
            id="patch-member-id-int64",
        ),
        pytest.param("PATCH", "/badges/2147483648", {"active": False}, id="patch-badge-id-int32"),
        pytest.param(
            "PATCH", "/badges/9223372036854775808", {"active": False}, id="patch-badge-id-int64"
        ),
        pytest.param("POST", "/zones", {"id": "attic", "name": "At\u0000tic"}, id="nul-in-body"),
        pytest.param("GET", "/members?plan=hot%00desk", None, id="nul-in-plan-filter"),
        pytest.param("GET", "/access-events?door=front%00door", None, id="nul-in-door-filter"),
        pytest.param(
            "GET", "/access-events?until=9999-12-31T23:59:59-05:00", None, id="until-past-year-9999"
        ),
        pytest.param(
            "GET",
            "/access-events?since=0001-01-01T00:00:00%2B01:00",
            None,
            id="since-before-year-1",
        ),
    ],
)
def test_odd_input_never_gets_a_server_error(
    client: TestClient, admin: Headers, method: str, path: str, body: Any
) -> None:
    response = client.request(method, path, json=body, headers=admin)

    assert response.status_code < 500, f"{method} {path} -> {response.status_code}"


@pytest.mark.parametrize("uid", ["04A1B2C3D4", "04a1b2c3d4", "04a1B2c3D4"])
def test_a_badge_uid_is_issued_once_in_any_case(
    client: TestClient, admin: Headers, space: Space, uid: str
) -> None:
    response = client.post("/badges", json={"uid": uid, "member_id": space.grace}, headers=admin)

    assert response.status_code == 409
    assert reason(response) == f"badge {space.ADA_BADGE} is already issued"
    assert answer(client.get("/badges", headers=admin))["total"] == 4


def test_a_member_email_is_used_once(client: TestClient, admin: Headers) -> None:
    body = {"name": "Barbara Liskov", "email": "barbara@example.org", "plan": "hot-desk"}
    answer(client.post("/members", json=body, headers=admin), 201)

    response = client.post("/members", json={**body, "name": "Someone else"}, headers=admin)

    assert response.status_code == 409
    assert "barbara@example.org" in reason(response)
    assert answer(client.get("/members", headers=admin))["total"] == 4


def test_a_member_patch_to_an_unknown_plan_changes_nothing(
    client: TestClient, admin: Headers, space: Space
) -> None:
    before = answer(client.get(f"/members/{space.ada}", headers=admin))

    response = client.patch(
        f"/members/{space.ada}", json={"plan": "gold", "status": "suspended"}, headers=admin
    )

    assert response.status_code == 422
    assert reason(response) == "body.plan: no plan 'gold'"
    assert answer(client.get(f"/members/{space.ada}", headers=admin)) == before


def test_a_desk_names_the_device_that_reports_it_and_no_unknown_one(
    client: TestClient, admin: Headers, gateway: Gateway
) -> None:
    desk = {"id": "desk-9", "name": "Desk 9", "zone": "lobby"}

    created = answer(
        client.post("/desks", json={**desk, "device": DOOR_DEVICE}, headers=admin), 201
    )
    unknown = client.post(
        "/desks", json={**desk, "id": "desk-8", "device": "nobody-1"}, headers=admin
    )

    assert created["device_id"] == DOOR_DEVICE
    assert gateway.policy().desk_devices["desk-9"] == DOOR_DEVICE
    assert (unknown.status_code, reason(unknown)) == (422, "body.device: no device 'nobody-1'")


def test_a_door_cannot_be_driven_by_a_desk_node(client: TestClient, admin: Headers) -> None:
    desk_node = {"id": "desk-node-1", "site": SITE, "kind": "desk_node"}
    answer(client.post("/devices", json=desk_node, headers=admin), 201)

    response = client.post(
        "/doors",
        json={"id": "attic-door", "name": "Attic", "zone": "lobby", "device": "desk-node-1"},
        headers=admin,
    )

    assert response.status_code == 422
    assert reason(response) == "body.device: 'desk-node-1' is a desk_node, not a door controller"
    assert ids(answer(client.get("/doors", headers=admin))) == [FRONT_DOOR, OFFICE_DOOR]


T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
ROME = timezone(timedelta(hours=1))


def access_row(
    event_id: str,
    minutes: int,
    door: str,
    member_id: int | None,
    badge: str,
    reason: Reason,
    offset: timezone = UTC,
) -> dict[str, Any]:
    tapped_at = (T0 + timedelta(minutes=minutes)).astimezone(offset)
    return {
        "event_id": event_id,
        "site": SITE,
        "device_id": DOOR_DEVICE,
        "door_id": door,
        "credential_kind": "badge",
        "credential": badge,
        "member_id": member_id,
        "granted": reason is Reason.GRANTED,
        "reason": reason.value,
        "tapped_at": tapped_at,
        "decided_at": tapped_at + timedelta(milliseconds=15),
    }


def test_the_access_log_filters_newest_first(
    client: TestClient, admin: Headers, space: Space, database_url: str
) -> None:
    s = space
    rows = [
        access_row("e1", 0, FRONT_DOOR, s.ada, s.ADA_BADGE, Reason.GRANTED),
        access_row("e2", 5, FRONT_DOOR, s.grace, s.GRACE_BADGE, Reason.GRANTED),
        access_row("e3", 10, OFFICE_DOOR, s.grace, s.GRACE_BADGE, Reason.WRONG_ZONE),
        access_row("e4", 15, FRONT_DOOR, s.linus, s.LINUS_BADGE, Reason.MEMBER_SUSPENDED),
        access_row("e6", 25, FRONT_DOOR, None, s.UNKNOWN_BADGE, Reason.UNKNOWN_BADGE),
    ]
    # Ada at the office door while it could not reach the gateway: its allow-list decided.
    offline = {
        **access_row("e5", 20, OFFICE_DOOR, s.ada, s.ADA_BADGE, Reason.GRANTED, offset=ROME),
        "decided_offline": True,
        "allowlist_version": 42,
    }
    with Store(database_url) as store, store.session() as session:
        insert_new(session, "access", rows)
        record_offline_taps(session, [offline])

    queries: dict[str, dict[str, Any]] = {
        "all": {},
        "front door": {"door": FRONT_DOOR},
        "grace": {"member_id": s.grace},
        "granted": {"result": "granted"},
        "denied": {"result": "denied"},
        "since 09:10 (inclusive)": {"since": "2025-03-03T09:10:00Z"},
        "until 09:10 (exclusive)": {"until": "2025-03-03T09:10:00+00:00"},
        "09:05 to 09:20, Rome time": {
            "since": "2025-03-03T10:05:00+01:00",
            "until": "2025-03-03T10:20:00+01:00",
        },
        "granted at the office door": {"door": OFFICE_DOOR, "result": "granted"},
        "second page": {"limit": 2, "offset": 2},
        "nobody's": {"member_id": 999},
    }
    pages = {
        name: answer(client.get("/access-events", params=q, headers=admin))
        for name, q in queries.items()
    }

    assert {name: (ids(page, "event_id"), page["total"]) for name, page in pages.items()} == {
        "all": (["e6", "e5", "e4", "e3", "e2", "e1"], 6),
        "front door": (["e6", "e4", "e2", "e1"], 4),
        "grace": (["e3", "e2"], 2),
        "granted": (["e5", "e2", "e1"], 3),
        "denied": (["e6", "e4", "e3"], 3),
        "since 09:10 (inclusive)": (["e6", "e5", "e4", "e3"], 4),
        "until 09:10 (exclusive)": (["e2", "e1"], 2),
        "09:05 to 09:20, Rome time": (["e4", "e3", "e2"], 3),
        "granted at the office door": (["e5"], 1),
        "second page": (["e4", "e3"], 6),
        "nobody's": ([], 0),
    }
    e5 = pages["all"]["items"][1]
    assert {key: value for key, value in e5.items() if not key.endswith("_at")} == {
        "event_id": "e5",
        "site": SITE,
        "device_id": DOOR_DEVICE,
        "door_id": OFFICE_DOOR,
        "credential_kind": "badge",
        "credential": s.ADA_BADGE,
        "member_id": s.ada,
        "granted": True,
        "reason": "granted",
        "decided_offline": True,
        "allowlist_version": 42,
    }
    online = pages["all"]["items"][0]
    assert (online["decided_offline"], online["allowlist_version"]) == (False, None)
    tapped_at = aware(e5["tapped_at"])
    assert (tapped_at, tapped_at.utcoffset()) == (T0 + timedelta(minutes=20), timedelta(0))
    assert aware(e5["decided_at"]) - tapped_at == timedelta(milliseconds=15)


def at_door(policy: Policy, uid: str, door: str = FRONT_DOOR, device: str = DOOR_DEVICE) -> Verdict:
    return decide(
        policy, device=device, door=door, credential=Credential(value=uid), at=protocol.utcnow()
    )


def test_the_policy_follows_changes_made_through_the_api(
    client: TestClient, gateway: Gateway, admin: Headers, space: Space
) -> None:
    def change(method: str, path: str, body: dict[str, Any]) -> Policy:
        before = gateway.policy().version
        response = client.request(method, path, json=body, headers=admin)
        assert response.is_success, response.text
        policy = gateway.policy()
        assert policy.version > before, f"{path} did not rebuild the policy"
        return policy

    assert at_door(gateway.policy(), space.GRACE_BADGE).granted

    policy = change("PATCH", f"/members/{space.grace}", {"status": "suspended"})
    assert at_door(policy, space.GRACE_BADGE).reason is Reason.MEMBER_SUSPENDED

    policy = change("PATCH", f"/members/{space.grace}", {"status": "active"})
    assert at_door(policy, space.GRACE_BADGE).granted

    policy = change("PATCH", f"/members/{space.grace}", {"plan": "private-office"})
    assert at_door(policy, space.GRACE_BADGE, OFFICE_DOOR).granted

    policy = change("PATCH", f"/badges/{grace_badge_id(client, admin, space)}", {"active": False})
    assert at_door(policy, space.GRACE_BADGE).reason is Reason.BADGE_REVOKED

    policy = change("POST", "/badges", {"uid": "04c3d4e5f6", "member_id": space.grace})
    assert at_door(policy, "04C3D4E5F6").granted


def test_a_door_made_through_the_api_opens_for_its_zone(
    client: TestClient, gateway: Gateway, admin: Headers, space: Space
) -> None:
    for path, body in [
        ("/zones", {"id": "meeting-rooms", "name": "Meeting rooms"}),
        ("/devices", {"id": "door-ctl-2", "site": SITE, "kind": "door_controller"}),
        (
            "/doors",
            {"id": "meeting-door", "name": "M", "zone": "meeting-rooms", "device": "door-ctl-2"},
        ),
        ("/plans", {"id": "meetings", "name": "Meetings", "zones": ["lobby", "meeting-rooms"]}),
    ]:
        answer(client.post(path, json=body, headers=admin), 201)

    def ada_at_the_meeting_door() -> Verdict:
        return at_door(gateway.policy(), space.ADA_BADGE, "meeting-door", "door-ctl-2")

    assert ada_at_the_meeting_door().reason is Reason.WRONG_ZONE

    answer(client.patch(f"/members/{space.ada}", json={"plan": "meetings"}, headers=admin))

    verdict = ada_at_the_meeting_door()
    assert (verdict.granted, verdict.unlock_seconds, verdict.member_id) == (True, 5.0, space.ada)
    assert at_door(gateway.policy(), space.ADA_BADGE, OFFICE_DOOR).reason is Reason.WRONG_ZONE


def test_the_docs_and_the_openapi_schema_are_served(client: TestClient) -> None:
    docs = client.get("/docs")
    schema = answer(client.get("/openapi.json"))

    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in docs.text
    assert schema["info"]["title"] == "Varco gateway"
    assert set(schema["paths"]) >= {
        "/healthz",
        "/zones",
        "/plans",
        "/devices",
        "/devices/{device_id}",
        "/devices/{device_id}/revoke",
        "/doors",
        "/members",
        "/members/{member_id}",
        "/badges",
        "/badges/{badge_id}",
        "/access-events",
    }
    scheme = schema["components"]["securitySchemes"]["HTTPBearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


# Each body field that takes a boolean or a number, and what a lax parser would take for it.
NOT_A_BOOLEAN = [0, 1, "false", "true", "no"]
BOOLEANS = [
    ("PATCH", "/badges/{badge_id}", {}, "active"),
    ("POST", "/zones", ZONE, "anti_passback"),
    ("PATCH", "/zones/lobby", {}, "anti_passback"),
    ("POST", "/plans", PLAN, "open_on_closures"),
    ("PATCH", "/plans/hot-desk", {}, "open_on_closures"),
    ("PATCH", f"/doors/{FRONT_DOOR}", {}, "open_after_first_entry"),
    ("PUT", "/members/{member_id}/profile", {"display_name": "Grace"}, "opt_in"),
]
NUMBERS = [
    ("POST", "/badges", BADGE, "member_id", [True, "1", 1.0]),
    ("POST", "/passes", {**GUEST_PASS, "host_member_id": 1}, "host_member_id", [True, "1"]),
    ("PATCH", f"/doors/{FRONT_DOOR}", {}, "unlock_seconds", [True, "4"]),
    ("POST", "/doors", DOOR, "unlock_seconds", [False, "4.5"]),
    ("POST", f"/doors/{FRONT_DOOR}/unlock", {}, "seconds", [True, "3"]),
]
# What pydantic alone takes for a time: seconds since 1970, no offset, no seconds, no time.
NOT_A_TIME = [19929, "19929", 1.5e9, "2026-12-01T09:00:00", "2026-12-01T09:00+01:00", "2026-12-01"]
TIMES = [
    ("PATCH", "/members/{member_id}", {}, "valid_until"),
    ("POST", "/members", MEMBER, "valid_from"),
    ("POST", "/closures", CLOSURE, "starts_at"),
    ("POST", "/passes", GUEST_PASS, "valid_until"),
]


def state_of(client: TestClient, admin: Headers) -> dict[str, Any]:
    return {path: answer(client.get(path, headers=admin)) for path in LISTS}


@pytest.mark.parametrize(("method", "path", "body", "field"), BOOLEANS, ids=lambda v: str(v))
def test_a_boolean_is_true_or_false_never_a_number_or_a_string(
    client: TestClient,
    admin: Headers,
    space: Space,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    url = concrete(path, space, grace_badge_id(client, admin, space))
    before = state_of(client, admin)

    answers = {
        value: client.request(method, url, json={**body, field: value}, headers=admin)
        for value in NOT_A_BOOLEAN
    }

    assert {v: r.status_code for v, r in answers.items()} == dict.fromkeys(NOT_A_BOOLEAN, 422)
    for response in answers.values():
        assert f"body.{field}: Input should be a valid boolean" in reason(response), response.text
    assert state_of(client, admin) == before


@pytest.mark.parametrize(
    ("method", "path", "body", "field", "values"), NUMBERS, ids=lambda v: str(v)
)
def test_a_number_is_a_json_number_never_a_boolean_or_a_string(
    client: TestClient,
    admin: Headers,
    space: Space,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
    values: list[Any],
) -> None:
    url = concrete(path, space, grace_badge_id(client, admin, space))
    before = state_of(client, admin)

    answers = [
        client.request(method, url, json={**body, field: value}, headers=admin) for value in values
    ]

    assert [r.status_code for r in answers] == [422] * len(values)
    for response in answers:
        assert f"body.{field}: Input should be a valid " in reason(response), response.text
    assert state_of(client, admin) == before


@pytest.mark.parametrize(("method", "path", "body", "field"), TIMES, ids=lambda v: str(v))
def test_a_time_is_an_rfc_3339_string_with_its_offset(
    client: TestClient,
    admin: Headers,
    space: Space,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    url = concrete(path, space, 0)
    before = state_of(client, admin)

    answers = {
        str(value): client.request(method, url, json={**body, field: value}, headers=admin)
        for value in NOT_A_TIME
    }

    assert {v: r.status_code for v, r in answers.items()} == dict.fromkeys(
        map(str, NOT_A_TIME), 422
    )
    for response in answers.values():
        assert reason(response) == (
            f"body.{field}: Value error, a time is an RFC 3339 string with its offset, "
            "such as 2026-12-01T09:00:00+01:00"
        )
    assert state_of(client, admin) == before


def test_a_member_valid_until_19929_is_refused_not_read_as_1970(
    client: TestClient, admin: Headers, space: Space
) -> None:
    response = client.patch(f"/members/{space.grace}", json={"valid_until": 19929}, headers=admin)
    member = answer(client.get(f"/members/{space.grace}", headers=admin))

    assert response.status_code == 422
    assert member["valid_until"] is None


@pytest.mark.parametrize(
    "value",
    ["2026-12-01T09:00:00Z", "2026-12-01t09:00:00.123456z", "2026-12-01T09:00:00.5-05:30"],
)
def test_every_rfc_3339_time_is_taken(client: TestClient, admin: Headers, value: str) -> None:
    closure = answer(
        client.post("/closures", json={**CLOSURE, "starts_at": value}, headers=admin), 201
    )

    assert aware(closure["starts_at"]) == datetime.fromisoformat(value.upper())


# Controls and characters that make a name read otherwise than it is, and where each hides.
UNPRINTABLE = {
    "\x1b[2J": 0x1B,  # an ANSI escape: clears an operator's terminal
    "Ada\x85Lovelace": 0x85,  # C1 next line
    "Ada\x9b31m": 0x9B,  # C1 control sequence introducer
    "Ada\u202eecalevoL": 0x202E,  # right-to-left override
    "Ada\u2066Lovelace\u2069": 0x2066,  # left-to-right isolate
    "Ada\u200bLovelace": 0x200B,  # zero-width space: two names that look the same
    "\ufeffAda": 0xFEFF,  # byte order mark
    "Ada\u2028Lovelace": 0x2028,  # line separator
    "Ada\u200fLovelace": 0x200F,  # right-to-left mark
}
NAMES = [
    ("POST", "/members", MEMBER, "name"),
    ("PATCH", "/zones/lobby", {}, "name"),
    ("POST", "/passes", GUEST_PASS, "guest_name"),
    ("POST", "/closures", CLOSURE, "name"),
    ("POST", "/tokens", {"role": "viewer"}, "name"),
    ("PUT", "/members/{member_id}/profile", {"opt_in": True}, "display_name"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), NAMES, ids=lambda v: str(v))
def test_a_name_with_a_control_or_invisible_character_is_refused_naming_it(
    client: TestClient,
    admin: Headers,
    space: Space,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    url = concrete(path, space, 0)
    before = state_of(client, admin)

    answers = {
        text: client.request(method, url, json={**body, field: text}, headers=admin)
        for text in UNPRINTABLE
    }

    assert {t: r.status_code for t, r in answers.items()} == dict.fromkeys(UNPRINTABLE, 422)
    for text, response in answers.items():
        assert reason(response) == (
            f"body.{field}: Value error, U+{UNPRINTABLE[text]:04X} at position "
            f"{text.index(chr(UNPRINTABLE[text]))} is a control or invisible character; "
            "names and texts are plain visible text"
        )
    assert state_of(client, admin) == before


def test_a_skill_with_a_control_character_is_refused(
    client: TestClient, admin: Headers, space: Space
) -> None:
    response = client.put(
        f"/members/{space.grace}/profile",
        json={"opt_in": True, "display_name": "Grace", "skills": ["VAT", "tax\x85"]},
        headers=admin,
    )

    assert response.status_code == 422
    assert "body.skills.1: Value error, U+0085 at position 3" in reason(response)


@pytest.mark.parametrize(
    "name",
    [
        "Zoë Çelik",
        "\u0645\u062d\u0645\u062f\u200c\u0631\u0636\u0627",
        "Ada 👩\u200d💻",
        "李小龍",
        "O'Brien-Smith (guest)",
    ],
    ids=["latin", "persian-zwnj", "emoji-zwj", "han", "punctuation"],
)
def test_a_name_in_any_script_is_taken(client: TestClient, admin: Headers, name: str) -> None:
    member = answer(client.post("/members", json={**MEMBER, "name": name}, headers=admin), 201)

    assert member["name"] == name


def test_a_viewer_sees_only_the_last_digits_of_a_badge_uid(
    client: TestClient, admin: Headers, viewer: Headers, space: Space, database_url: str
) -> None:
    row = access_row("e1", 0, FRONT_DOOR, None, space.UNKNOWN_BADGE, Reason.UNKNOWN_BADGE)
    with Store(database_url) as store, store.session() as session:
        insert_new(session, "access", [row])
        operator = bearer(issue_token(session, name="front desk", role=Role.OPERATOR))

    def shown(headers: Headers) -> tuple[str, set[str]]:
        [event] = answer(client.get("/access-events", headers=headers))["items"]
        badges = answer(client.get("/badges", headers=headers))["items"]
        return event["credential"], {badge["uid"] for badge in badges}

    uids = {space.ADA_BADGE, space.GRACE_BADGE}
    assert shown(admin)[0] == space.UNKNOWN_BADGE
    assert shown(admin)[1] >= uids
    # Operators register cards and look into refused taps: they read the whole UID.
    assert shown(operator)[0] == space.UNKNOWN_BADGE
    event, badges = shown(viewer)
    hidden = len(space.UNKNOWN_BADGE) - 4
    assert event == "*" * hidden + space.UNKNOWN_BADGE[-4:]
    assert not badges & uids
    assert {uid[-4:] for uid in badges} >= {uid[-4:] for uid in uids}
    assert all(set(uid[:-4]) == {"*"} for uid in badges)


def test_a_pass_code_is_shown_once_and_kept_only_as_its_hash(
    client: TestClient, admin: Headers, viewer: Headers, database_url: str
) -> None:
    created = answer(client.post("/passes", json=GUEST_PASS, headers=admin), 201)
    code = created["code"]

    reads = [
        client.get(path, headers=headers).text
        for path in ("/passes", "/access-events", "/audit")
        for headers in (admin, viewer)
    ]
    with Store(database_url) as store, store.session() as session:
        [stored] = session.scalars(select(GuestPass))

    assert re.fullmatch(r"[0-9A-F]{20}", code)  # 80 random bits
    assert created["qr_text"] == f"varco-pass:{code}"
    assert stored.code_hash == protocol.pass_code_hash(code)
    for text in reads:
        assert code not in text
        assert stored.code_hash not in text
