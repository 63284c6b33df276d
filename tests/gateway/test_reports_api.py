"""GET /reports/usage on the scripted day of ``test_reports``, stored in SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from gateway.api import create_app
from gateway.service import Gateway
from gateway.settings import Settings
from gateway.store import Store
from gateway.store.models import Desk, Door, Member, Site, Zone
from gateway.store.records import insert_new
from tests.factories import DOOR_DEVICE, FRONT_DOOR, OFFICE_DOOR, SITE, Space, make_space
from tests.gateway.test_api import Headers, answer, bearer, reason
from tests.gateway.test_reports import DESK_CHANGES, TAPS, at

EXIT_DOOR = "exit"
DESK_NODE = "desk-node-1"
DAY = {"since": "2025-03-04T00:00:00+01:00", "until": "2025-03-05T00:00:00+01:00"}
MIDDAY = {"since": "2025-03-04T12:00:00+01:00", "until": "2025-03-04T14:00:00+01:00"}


def seed_the_day(database_url: str, space: Space) -> dict[str, int]:
    """Store the scripted day in Rome: an exit door, two areas of desks, Barbara, the events."""
    with Store(database_url) as store, store.session() as session:
        session.execute(update(Site).where(Site.id == SITE).values(timezone="Europe/Rome"))
        session.add_all(
            [
                Door(id=EXIT_DOOR, name="Exit", zone_id="lobby", direction="out"),
                Zone(id="open-space", name="Open space"),
                Zone(id="rooms", name="Meeting rooms"),
            ]
        )
        session.flush()
        barbara = Member(name="Barbara Liskov", plan_id="hot-desk")
        session.add_all(
            [
                barbara,
                Desk(id="desk-1", name="Desk 1", zone_id="open-space"),
                Desk(id="desk-2", name="Desk 2", zone_id="open-space"),
                Desk(id="room-1", name="Room 1", zone_id="rooms", kind="room"),
            ]
        )
        session.flush()
        members = {"ada": space.ada, "grace": space.grace, "linus": space.linus}
        members["barbara"] = barbara.id
        taps = []
        for i, (clock, who, direction, granted) in enumerate(TAPS):
            door = EXIT_DOOR if direction == "out" else FRONT_DOOR
            if (clock, who) == ("11:00", "grace"):
                door = OFFICE_DOOR
            taps.append(
                {
                    "event_id": f"tap-{i}",
                    "site": SITE,
                    "device_id": DOOR_DEVICE,
                    "door_id": door,
                    "credential_kind": "badge",
                    "credential": f"BADGE{members[who]}",
                    "member_id": members[who],
                    "granted": granted,
                    "reason": "granted" if granted else "member_suspended",
                    "tapped_at": at(clock),
                    "decided_at": at(clock) + timedelta(milliseconds=15),
                }
            )
        desks = [
            {
                "event_id": f"desk-{i}",
                "site": SITE,
                "device_id": DESK_NODE,
                "desk_id": desk,
                "occupied": occupied,
                "at": at(clock, day),
            }
            for i, (desk, clock, occupied, day) in enumerate(DESK_CHANGES)
        ]
        insert_new(session, "access", taps)
        insert_new(session, "desk", desks)
        return members


@pytest.fixture
def space(database_url: str) -> Space:
    with Store(database_url) as store:
        return make_space(store)


@pytest.fixture
def members(database_url: str, space: Space) -> dict[str, int]:
    return seed_the_day(database_url, space)


@pytest.fixture
def client(database_url: str, members: dict[str, int]) -> Iterator[TestClient]:
    # The scripted day is in 2025: keep it past the default retention period of the access log.
    settings = Settings(database_url=database_url, access_log_retention_days=0)
    gateway = Gateway(settings, ingest=False)
    with TestClient(create_app(gateway), raise_server_exceptions=True) as client:
        yield client


@pytest.fixture
def viewer(space: Space) -> Headers:
    return bearer(space.viewer_token)


def report(client: TestClient, headers: Headers, **params: Any) -> Any:
    """Return a JSON report, each instant parsed, so offsets need not be spelled alike."""
    body = answer(client.get("/reports/usage", params=params, headers=headers))
    for part in [body, body["summary"], *body["rows"]]:
        for key in ("since", "until", "peak_at"):
            if part.get(key) is not None:
                part[key] = datetime.fromisoformat(part[key])
    return body


def test_hours_present_per_member_over_the_day(
    client: TestClient, viewer: Headers, members: dict[str, int]
) -> None:
    body = report(client, viewer, group_by="member", **DAY)

    assert (body["since"], body["until"], body["group_by"]) == (
        at("00:00"),
        at("00:00", day=5),
        "member",
    )
    assert body["rows"] == [
        {"member_id": members["ada"], "name": "Ada Lovelace", "hours_present": 13.5, "sessions": 2},
        {
            "member_id": members["grace"],
            "name": "Grace Hopper",
            "hours_present": 8.0,
            "sessions": 1,
        },
        {
            "member_id": members["barbara"],
            "name": "Barbara Liskov",
            "hours_present": 4.0,
            "sessions": 1,
        },
    ]
    assert body["summary"] == {
        "timezone": "Europe/Rome",
        "period_hours": 24.0,
        "members": 3,
        "hours_present": 25.5,
        "sessions": 4,
        "peak_present": 2,
        "peak_at": at("10:00"),
    }


def test_hours_present_are_clipped_to_the_period_and_follow_the_timeout(
    client: TestClient, viewer: Headers, members: dict[str, int]
) -> None:
    midday = report(client, viewer, **MIDDAY)
    short = report(client, viewer, session_timeout_hours=4, **DAY)

    assert [(r["member_id"], r["hours_present"], r["sessions"]) for r in midday["rows"]] == [
        (members["ada"], 1.0, 2),
        (members["grace"], 2.0, 1),
    ]
    assert (midday["summary"]["peak_present"], midday["summary"]["peak_at"]) == (2, at("12:00"))
    assert [(r["member_id"], r["hours_present"]) for r in short["rows"]] == [
        (members["ada"], 7.5),
        (members["grace"], 5.0),
        (members["barbara"], 4.0),
    ]


def test_desk_hours_and_utilisation_per_desk(client: TestClient, viewer: Headers) -> None:
    body = report(client, viewer, group_by="desk", **DAY)

    assert body["rows"] == [
        {
            "desk_id": "desk-1",
            "name": "Desk 1",
            "area": "open-space",
            "desk_hours": 6.83,
            "utilisation_pct": 28.47,
        },
        {
            "desk_id": "desk-2",
            "name": "Desk 2",
            "area": "open-space",
            "desk_hours": 8.0,
            "utilisation_pct": 33.33,
        },
        {
            "desk_id": "room-1",
            "name": "Room 1",
            "area": "rooms",
            "desk_hours": 8.0,
            "utilisation_pct": 33.33,
        },
    ]
    assert body["summary"] == {
        "timezone": "Europe/Rome",
        "period_hours": 24.0,
        "desks": 3,
        "desk_hours": 22.83,
        "utilisation_pct": 31.71,
        "peak_occupancy": 3,
        "peak_at": at("16:00"),
    }


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        (
            DAY,
            [
                ("open-space", "Open space", 2, 14.83, 30.9, 2, at("10:00")),
                ("rooms", "Meeting rooms", 1, 8.0, 33.33, 1, at("16:00")),
            ],
        ),
        (
            # desk-2 is occupied at noon by its repeated 11:00 event, the last before the period.
            MIDDAY,
            [
                ("open-space", "Open space", 2, 2.83, 70.83, 2, at("12:00")),
                ("rooms", "Meeting rooms", 1, 0.0, 0.0, 0, None),
            ],
        ),
    ],
    ids=["day", "midday"],
)
def test_desk_hours_utilisation_and_peak_per_area(
    client: TestClient, viewer: Headers, period: dict[str, str], expected: list[tuple[Any, ...]]
) -> None:
    body = report(client, viewer, group_by="area", **period)

    assert [tuple(row.values()) for row in body["rows"]] == expected
    assert list(body["rows"][0]) == [
        "area_id",
        "name",
        "desks",
        "desk_hours",
        "utilisation_pct",
        "peak_occupancy",
        "peak_at",
    ]


def test_the_report_comes_as_csv_by_format_or_by_accept(
    client: TestClient, viewer: Headers
) -> None:
    by_format = client.get(
        "/reports/usage", params={"group_by": "area", "format": "csv", **DAY}, headers=viewer
    )
    by_accept = client.get(
        "/reports/usage",
        params={"group_by": "area", **DAY},
        headers=viewer | {"Accept": "text/csv;q=0.9, application/json;q=0.5"},
    )
    json_wins = client.get(
        "/reports/usage",
        params={"group_by": "area", "format": "json", **DAY},
        headers=viewer | {"Accept": "text/csv"},
    )

    for response in (by_format, by_accept):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        assert response.headers["content-disposition"] == (
            'attachment; filename="usage-area-20250303T230000Z-20250304T230000Z.csv"'
        )
        assert response.text == (
            "area_id,name,desks,desk_hours,utilisation_pct,peak_occupancy,peak_at\r\n"
            "open-space,Open space,2,14.83,30.9,2,2025-03-04T09:00:00Z\r\n"
            "rooms,Meeting rooms,1,8.0,33.33,1,2025-03-04T15:00:00Z\r\n"
        )
    assert answer(json_wins)["group_by"] == "area"


def test_csv_cells_never_start_a_spreadsheet_formula(
    client: TestClient, viewer: Headers, database_url: str, members: dict[str, int]
) -> None:
    with Store(database_url) as store, store.session() as session:
        session.execute(update(Member).where(Member.id == members["grace"]).values(name="=1+1"))

    response = client.get("/reports/usage", params={"format": "csv", **MIDDAY}, headers=viewer)

    assert response.text.splitlines() == [
        "member_id,name,hours_present,sessions",
        f"{members['ada']},Ada Lovelace,1.0,2",
        f"{members['grace']},'=1+1,2.0,1",
    ]


def test_without_a_period_the_report_covers_the_last_30_days(
    client: TestClient, viewer: Headers
) -> None:
    body = report(client, viewer)

    assert body["until"] - body["since"] == timedelta(days=30)
    assert body["rows"] == []  # the scripted day is long past
    assert body["summary"]["peak_at"] is None


def add_a_site_in_lisbon(database_url: str, members: dict[str, int]) -> None:
    """A second site, an hour behind Rome: Barbara there from 08:30 to 09:30, its time."""
    lisbon = ZoneInfo("Europe/Lisbon")
    came, left = (
        datetime(2025, 3, 4, 8, 30, tzinfo=lisbon),
        datetime(2025, 3, 4, 9, 30, tzinfo=lisbon),
    )
    tap: dict[str, Any] = {
        "site": "lisbon",
        "device_id": "lx-door-ctl",
        "credential_kind": "badge",
        "credential": "BADGE9",
        "member_id": members["barbara"],
        "granted": True,
        "reason": "granted",
        "decided_at": came,
    }
    desk = {"site": "lisbon", "device_id": "lx-desk-node", "desk_id": "lx-desk-1"}
    with Store(database_url) as store, store.session() as session:
        session.add(Site(id="lisbon", name="Lisbon", timezone="Europe/Lisbon"))
        session.add(Desk(id="lx-desk-1", name="Lisbon desk 1", zone_id="open-space"))
        session.flush()
        insert_new(
            session,
            "access",
            [
                {
                    **tap,
                    "event_id": "lx-in",
                    "door_id": FRONT_DOOR,
                    "tapped_at": came,
                    "decided_at": came,
                },
                {
                    **tap,
                    "event_id": "lx-out",
                    "door_id": EXIT_DOOR,
                    "tapped_at": left,
                    "decided_at": left,
                },
            ],
        )
        # Half an hour at a desk: 09:40-10:10 Rome time.
        insert_new(
            session,
            "desk",
            [
                {**desk, "event_id": "lx-d1", "occupied": True, "at": at("09:40")},
                {**desk, "event_id": "lx-d2", "occupied": False, "at": at("10:10")},
            ],
        )


def test_a_report_on_one_site_counts_only_its_taps_and_desks_in_its_time_zone(
    client: TestClient, database_url: str, viewer: Headers, members: dict[str, int]
) -> None:
    add_a_site_in_lisbon(database_url, members)
    lisbon_day = {"since": "2025-03-04T00:00:00+00:00", "until": "2025-03-05T00:00:00+00:00"}

    people = report(client, viewer, group_by="member", site="lisbon", **lisbon_day)
    desks = report(client, viewer, group_by="desk", site="lisbon", **lisbon_day)
    everywhere = report(client, viewer, group_by="desk", **DAY)

    assert people["site"] == "lisbon"
    assert people["summary"]["timezone"] == "Europe/Lisbon"
    assert [(r["name"], r["hours_present"]) for r in people["rows"]] == [("Barbara Liskov", 1.0)]
    assert [(r["desk_id"], r["desk_hours"]) for r in desks["rows"]] == [("lx-desk-1", 0.5)]
    assert everywhere["site"] is None
    assert "lx-desk-1" in [r["desk_id"] for r in everywhere["rows"]]


def test_a_report_on_a_site_that_does_not_exist_gets_a_422(
    client: TestClient, viewer: Headers
) -> None:
    response = client.get("/reports/usage", params={"site": "atlantis", **DAY}, headers=viewer)

    assert response.status_code == 422
    assert reason(response) == "query.site: no site 'atlantis'"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"since": DAY["until"], "until": DAY["since"]}, "query.until: until must be after since"),
        ({"since": DAY["since"], "until": DAY["since"]}, "query.until: until must be after since"),
        (
            {"since": "2025-01-01T00:00:00Z", "until": "2026-02-05T00:00:01Z"},
            "query.until: a report covers at most 400 days",
        ),
        (
            {"since": "1960-01-01T00:00:00Z", "until": "1960-01-02T00:00:00Z"},
            "query.since: must lie",
        ),
        ({"until": "0001-01-02T00:00:00Z"}, "query.until: falls outside the calendar"),
        (
            {"since": "2025-03-04T00:00:00", "until": DAY["until"]},
            "query.since: Value error, a time is an RFC 3339 string with its offset",
        ),
        ({"group_by": "zone"}, "query.group_by: Input should be 'member', 'desk' or 'area'"),
        ({"format": "xml"}, "query.format: Input should be 'json' or 'csv'"),
        ({"session_timeout_hours": 0}, "query.session_timeout_hours: Input should be greater"),
        ({"session_timeout_hours": 25}, "query.session_timeout_hours: Input should be less"),
        ({"session_timeout_hours": "nan"}, "query.session_timeout_hours: Input should be a finite"),
    ],
    ids=[
        "backwards",
        "empty",
        "too-long",
        "too-early",
        "before-the-calendar",
        "naive",
        "bad-group",
        "bad-format",
        "no-timeout",
        "timeout-too-long",
        "timeout-nan",
    ],
)
def test_a_bad_query_gets_a_422_with_the_reason(
    client: TestClient, viewer: Headers, params: dict[str, Any], expected: str
) -> None:
    response = client.get("/reports/usage", params=params, headers=viewer)

    assert response.status_code == 422, response.text
    assert reason(response).startswith(expected), reason(response)


def test_a_report_needs_a_token(client: TestClient) -> None:
    anonymous = client.get("/reports/usage", params=DAY)
    forged = client.get("/reports/usage", params=DAY, headers=bearer("vk_not-a-real-token"))

    assert (anonymous.status_code, forged.status_code) == (401, 401)
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert "missing bearer token" in reason(anonymous)
