"""Deleting and erasing through the API: what depends on a thing, what the doors and the logs
keep, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from gateway.service import Gateway
from gateway.store import Store
from gateway.store.models import AuditEntry, Base, SetAsideRecord
from gateway.store.records import insert_new, set_aside
from tests.factories import FRONT_DOOR, OFFICE_DOOR, Space
from tests.gateway.test_api import access_row, answer, at_door
from varco.protocol import Reason

Headers = dict[str, str]
DAY = {"since": "2025-03-03T00:00:00Z", "until": "2025-03-04T00:00:00Z"}


def badge_id(client: TestClient, admin: Headers, uid: str) -> int:
    page = answer(client.get("/badges", params={"limit": 500}, headers=admin))
    found: int = next(b["id"] for b in page["items"] if b["uid"] == uid)
    return found


def test_a_deleted_badge_opens_no_door_and_is_audited(
    client: TestClient, admin: Headers, gateway: Gateway, space: Space
) -> None:
    before = at_door(gateway.policy(), space.ADA_BADGE)
    deleted = client.delete(f"/badges/{badge_id(client, admin, space.ADA_BADGE)}", headers=admin)
    after = at_door(gateway.policy(), space.ADA_BADGE)
    audit = answer(client.get("/audit", params={"entity": "badge"}, headers=admin))

    assert (before.granted, deleted.status_code) == (True, 204)
    assert (after.granted, after.reason) == (False, Reason.UNKNOWN_BADGE)
    assert space.ADA_BADGE not in gateway.policy().badges
    assert [(e["action"], e["changes"]["uid"]["old"]) for e in audit["items"]][:1] == [
        ("delete", space.ADA_BADGE)
    ]


def test_a_deleted_member_takes_their_badges_and_keeps_their_taps(
    client: TestClient, admin: Headers, gateway: Gateway, space: Space, database_url: str
) -> None:
    with Store(database_url) as store, store.session() as session:
        insert_new(
            session,
            "access",
            [access_row("t1", 0, FRONT_DOOR, space.ada, space.ADA_BADGE, Reason.GRANTED)],
        )
    deleted = client.delete(f"/members/{space.ada}", headers=admin)
    taps = answer(client.get("/access-events", headers=admin))

    assert deleted.status_code == 204
    assert client.get(f"/members/{space.ada}", headers=admin).status_code == 404
    assert at_door(gateway.policy(), space.ADA_BADGE).reason is Reason.UNKNOWN_BADGE
    assert space.ada not in gateway.policy().members
    assert [(t["event_id"], t["member_id"]) for t in taps["items"]] == [("t1", space.ada)]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/plans/hot-desk", "plan 'hot-desk' is the plan of 2 member(s) (2, 3): move them"),
        ("/zones/lobby", "zone 'lobby' is in use: doors front-door lead into it; plans "),
        ("/devices/door-ctl-1", "device 'door-ctl-1' is in use: it drives doors front-door, "),
    ],
)
def test_what_others_use_is_not_deleted_and_the_answer_says_what(
    client: TestClient, admin: Headers, gateway: Gateway, path: str, reason: str
) -> None:
    version = gateway.policy().version
    response = client.delete(path, headers=admin)

    assert response.status_code == 409
    assert response.json()["detail"].startswith(reason)
    assert client.get(path.rsplit("/", 1)[0], headers=admin).json()["total"] >= 1
    assert gateway.policy().version == version


def test_a_door_on_a_pass_still_to_be_used_is_kept_then_deleted_once_revoked(
    client: TestClient, admin: Headers, gateway: Gateway
) -> None:
    now = datetime.now(UTC)
    guest = {
        "guest_name": "Katherine Johnson",
        "event": "Open day",
        "valid_from": now.isoformat(),
        "valid_until": (now + timedelta(hours=2)).isoformat(),
        "doors": [OFFICE_DOOR],
    }
    made = answer(client.post("/passes", json=guest, headers=admin), 201)
    refused = client.delete(f"/doors/{OFFICE_DOOR}", headers=admin)
    answer(client.post(f"/passes/{made['id']}/revoke", headers=admin))
    deleted = client.delete(f"/doors/{OFFICE_DOOR}", headers=admin)

    assert refused.status_code == 409
    assert f"guest passes still to be used ({made['id']})" in refused.json()["detail"]
    assert deleted.status_code == 204
    assert OFFICE_DOOR not in gateway.policy().doors


def test_an_emptied_zone_and_plan_and_a_bare_device_are_deleted(
    client: TestClient, admin: Headers, gateway: Gateway
) -> None:
    answer(client.post("/zones", json={"id": "attic", "name": "Attic"}, headers=admin), 201)
    plan = {"id": "attic-only", "name": "Attic", "zones": ["attic"]}
    answer(client.post("/plans", json=plan, headers=admin), 201)
    desk = {"id": "desk-9", "name": "Desk 9", "zone": "attic"}
    answer(client.post("/desks", json=desk, headers=admin), 201)
    device = {"id": "door-ctl-9", "site": "test-site", "kind": "door_controller"}
    answer(client.post("/devices", json=device, headers=admin), 201)

    statuses = [
        client.delete(path, headers=admin).status_code
        for path in ("/zones/attic", "/desks/desk-9", "/plans/attic-only", "/zones/attic")
    ] + [client.delete("/devices/door-ctl-9", headers=admin).status_code]

    assert statuses == [409, 204, 204, 204, 204]
    assert "attic" not in gateway.policy().zones
    assert "door-ctl-9" not in gateway.policy().devices
    assert client.get("/devices/door-ctl-9", headers=admin).status_code == 404


def everything_in_sql(database_url: str) -> str:
    """Every row of every table, as text: what someone reading the database could find."""
    with Store(database_url) as store, store.session() as session:
        return "\n".join(
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in session.execute(text(f"SELECT * FROM {table.name}"))  # noqa: S608
        )


def test_an_erased_member_leaves_no_identity_in_sql_and_the_report_keeps_its_totals(
    client: TestClient, admin: Headers, gateway: Gateway, space: Space, database_url: str
) -> None:
    # Grace: an email, a profile, her badges' changes audited, taps on a day, one set aside.
    patch = {"name": "Grace B. Hopper"}
    answer(client.patch(f"/members/{space.grace}", json=patch, headers=admin))
    profile = {"opt_in": True, "display_name": "Amazing Grace", "skills": ["COBOL"]}
    answer(client.put(f"/members/{space.grace}/profile", json=profile, headers=admin))
    extra = answer(
        client.post("/badges", json={"uid": "0499999999", "member_id": space.grace}, headers=admin),
        201,
    )
    rows = [
        access_row("g1", 0, FRONT_DOOR, space.grace, space.GRACE_BADGE, Reason.GRANTED),
        access_row("g2", 90, FRONT_DOOR, space.grace, space.GRACE_BADGE, Reason.GRANTED),
        access_row("g3", 95, OFFICE_DOOR, space.grace, space.GRACE_BADGE, Reason.WRONG_ZONE),
        access_row("a1", 30, FRONT_DOOR, space.ada, space.ADA_BADGE, Reason.GRANTED),
    ]
    with Store(database_url) as store, store.session() as session:
        insert_new(session, "access", rows)
        set_aside(session, "access", {**rows[0], "event_id": "g9", "door_id": "x" * 80}, "too long")
    report = {"group_by": "member", **DAY}
    before = answer(client.get("/reports/usage", params=report, headers=admin))
    identity = [
        "Grace",
        "Hopper",
        "Amazing",
        "COBOL",
        space.GRACE_BADGE,
        space.LOST_BADGE,
        extra["uid"],
    ]
    assert all(value in everything_in_sql(database_url) for value in identity)

    erased = answer(client.post(f"/members/{space.grace}/erase", headers=admin))
    after = answer(client.get("/reports/usage", params=report, headers=admin))
    taps = answer(client.get("/access-events", params={"limit": 10}, headers=admin))
    sql = everything_in_sql(database_url)

    assert [value for value in identity if value in sql] == []
    assert after["summary"] == before["summary"]
    assert sorted(r["hours_present"] for r in after["rows"]) == sorted(
        r["hours_present"] for r in before["rows"]
    )
    pseudonym = erased["pseudonym"]
    assert pseudonym < 0
    assert (erased["badges"], erased["access_events"]) == (3, 3)
    assert {t["event_id"]: t["member_id"] for t in taps["items"]} == {
        "g1": pseudonym,
        "g2": pseudonym,
        "g3": pseudonym,
        "a1": space.ada,
    }
    assert at_door(gateway.policy(), space.GRACE_BADGE).reason is Reason.UNKNOWN_BADGE
    assert client.get(f"/members/{space.grace}", headers=admin).status_code == 404
    with Store(database_url) as store, store.session() as session:
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "erase")).all()
        kept = session.scalars(select(SetAsideRecord)).one()
    assert (entry.entity, entry.entity_id, entry.actor) == (
        "member",
        str(space.grace),
        "test admin",
    )
    assert str(pseudonym) not in str(entry.details)
    assert kept.row["member_id"] == pseudonym


def test_a_badge_no_reader_at_the_doors_would_send_is_made_with_a_warning(
    client: TestClient, admin: Headers
) -> None:
    answer(client.patch(f"/doors/{FRONT_DOOR}", json={"reader_kind": "serial_line"}, headers=admin))
    answer(client.patch(f"/doors/{OFFICE_DOOR}", json={"reader_kind": "mfrc522"}, headers=admin))
    decimal = answer(
        client.post("/badges", json={"uid": "0499999999", "member_id": 1}, headers=admin), 201
    )
    fine = answer(
        client.post("/badges", json={"uid": "04C3D4E5", "member_id": 1}, headers=admin), 201
    )
    doors = answer(client.get("/doors", headers=admin))["items"]

    assert decimal["warnings"] == [
        "door front-door will never read 0499999999: a serial_line reader types 0499999999 as "
        "a decimal card number and sends it as 1DCD64FF: if 0499999999 is the number printed "
        "on the card, register 1DCD64FF",
        "door office-door will never read 0499999999: an mfrc522 reader sends 8 or 14 hex "
        "digits, not 10",
    ]
    assert fine["warnings"] == []
    assert {d["id"]: d["reader_kind"] for d in doors} == {
        FRONT_DOOR: "serial_line",
        OFFICE_DOOR: "mfrc522",
    }


def test_a_door_whose_reader_is_not_said_warns_of_a_decimal_card_number(
    client: TestClient, admin: Headers
) -> None:
    made: dict[str, Any] = answer(
        client.post("/badges", json={"uid": "1234567890", "member_id": 1}, headers=admin), 201
    )

    assert made["warnings"] == [
        "doors front-door, office-door will never read 1234567890: if its reader types card "
        "numbers, a serial_line reader types 1234567890 as a decimal card number and sends it "
        "as 499602D2: if 1234567890 is the number printed on the card, register 499602D2"
    ]
