"""Members and badges by CSV through the API: a dry run that names every bad row and changes
nothing, an import that is all or nothing, and an export a spreadsheet opens safely."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient

from gateway.service import Gateway
from tests.factories import FRONT_DOOR, Space
from tests.gateway.conftest import Headers
from tests.gateway.test_api import answer, at_door, bearer

HEADER = "name,email,plan,status,valid_from,valid_until,badges\r\n"
GOOD = [
    "Barbara Liskov,barbara@example.org,hot-desk,active,,,04C3D4E5F6",
    "Frances Allen,,private-office,,2026-01-01T00:00:00+01:00,,04D4E5F6A7 04E5F6A7B8C9",
]
BAD = [
    ",nobody@example.org,hot-desk,,,,",  # line 4: no name
    "Edsger Dijkstra,edsger@example.org,no-such-plan,,,,",  # line 5
    "Alan Kay,barbara@example.org,hot-desk,,,,",  # line 6: Barbara's email, on line 2
    "Niklaus Wirth,,hot-desk,retired,,,",  # line 7: no such status
    "Tony Hoare,,hot-desk,,2026-01-01,,",  # line 8: a date without its time and offset
    f"John Backus,,hot-desk,,,,{Space.ADA_BADGE}",  # line 9: Ada's badge
    "Donald Knuth,,hot-desk,,,,04C3D4E5F6 XYZ",  # line 10: Barbara's badge, and no UID
]


def send(client: TestClient, admin: Headers, text: str, **params: object) -> tuple[int, dict]:  # type: ignore[type-arg]
    response = client.post(
        "/members/import",
        content=text.encode(),
        params=params,
        headers={**admin, "Content-Type": "text/csv"},
    )
    return response.status_code, response.json()


def members(client: TestClient, admin: Headers) -> list[str]:
    return [m["name"] for m in answer(client.get("/members", headers=admin))["items"]]


EXPECTED_ERRORS = [
    (4, "name"),
    (5, "plan"),
    (6, "email"),
    (7, "status"),
    (8, "valid_from"),
    (9, "badges"),
    (10, "badges"),
    (10, "badges"),
]


def test_a_dry_run_names_every_bad_row_and_changes_nothing(
    client: TestClient, admin: Headers
) -> None:
    before = members(client, admin)
    code, report = send(client, admin, HEADER + "\r\n".join(GOOD + BAD) + "\r\n", dry_run=True)

    assert code == 200
    assert (report["dry_run"], report["rows"]) == (True, 9)
    assert [(e["line"], e["field"]) for e in report["errors"]] == EXPECTED_ERRORS
    messages = {(e["line"], e["message"]) for e in report["errors"]}
    assert (5, "no plan 'no-such-plan'") in messages
    assert (6, "'barbara@example.org' is on line 2 too") in messages
    assert (9, f"badge {Space.ADA_BADGE} is already issued") in messages
    assert (10, "badge 04C3D4E5F6 is on line 2 too") in messages
    assert (10, "'XYZ' is not a UID: 4-64 hex digits") in messages
    assert members(client, admin) == before


def test_an_import_with_a_bad_row_changes_nothing(
    client: TestClient, admin: Headers, gateway: Gateway
) -> None:
    before = members(client, admin)
    version = gateway.policy().version
    code, report = send(client, admin, HEADER + "\r\n".join(GOOD + BAD[:1]))

    assert code == 422
    assert [(e["line"], e["field"]) for e in report["errors"]] == [(4, "name")]
    assert report["members"] == 0
    assert members(client, admin) == before
    assert gateway.policy().version == version


def test_an_import_makes_members_whose_badges_open_doors_and_export_gives_them_back(
    client: TestClient, admin: Headers, gateway: Gateway, space: Space
) -> None:
    # A spreadsheet's UTF-8 byte-order mark, and a name a spreadsheet would run as a formula.
    text = "\ufeff" + HEADER + "\r\n".join([*GOOD, "=HYPERLINK(1),,hot-desk,,,,"]) + "\r\n"
    code, report = send(client, admin, text)
    exported = client.get("/members/export", headers=admin)
    viewed = client.get("/members/export", headers=bearer(space.viewer_token))
    rows = list(csv.DictReader(io.StringIO(exported.text)))

    assert code == 200
    assert (report["members"], report["badges"], report["errors"]) == (3, 3, [])
    assert at_door(gateway.policy(), "04D4E5F6A7", FRONT_DOOR).granted
    assert exported.headers["content-type"].startswith("text/csv")
    assert [r["name"] for r in rows][-3:] == ["Barbara Liskov", "Frances Allen", "'=HYPERLINK(1)"]
    assert rows[-2]["badges"] == "04D4E5F6A7 04E5F6A7B8C9"
    assert rows[-2]["valid_from"] == "2025-12-31T23:00:00+00:00"
    assert "04D4E5F6A7" not in viewed.text
    assert "******F6A7" in viewed.text


def test_a_decimal_card_number_is_imported_with_a_warning(
    client: TestClient, admin: Headers
) -> None:
    code, report = send(client, admin, HEADER + "Ken Thompson,,hot-desk,,,,0499999999\r\n")

    assert code == 200
    assert report["members"] == 1
    [warning] = report["warnings"]
    assert (warning["line"], warning["field"]) == (2, "badges")
    assert "register 1DCD64FF" in warning["message"]


def test_a_file_that_is_no_csv_of_members_is_refused_whole(
    client: TestClient, admin: Headers
) -> None:
    json_body = client.post("/members/import", json={"name": "x"}, headers=admin)
    unknown = send(client, admin, "name,plan,shoe_size\r\nAda,hot-desk,38\r\n")
    missing = send(client, admin, "name,email\r\nAda,ada@example.org\r\n")
    latin1 = client.post(
        "/members/import",
        content="name,plan\r\nJosé,hot-desk\r\n".encode("latin-1"),
        headers={**admin, "Content-Type": "text/csv"},
    )

    assert json_body.status_code == 415
    assert unknown[0] == 422
    [problem] = unknown[1]["errors"]
    assert (problem["line"], problem["field"]) == (1, "file")
    assert problem["message"].startswith("unknown column(s) 'shoe_size'; the columns are name,")
    assert [e["message"] for e in missing[1]["errors"]] == ["missing column(s) plan"]
    assert unknown[1]["members"] == 0
    assert (latin1.status_code, latin1.json()["detail"][0]["msg"]) == (
        422,
        "the file is not UTF-8 (byte 14); save it as CSV UTF-8",
    )
