"""The API's side of remote configuration (``/devices/{id}/overrides``): what it takes, what
it keeps, what it refuses."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import DOOR_DEVICE, FRONT_DOOR
from tests.gateway.conftest import Headers
from tests.gateway.test_api import answer, reason

PATH = f"/devices/{DOOR_DEVICE}/overrides"


def test_overrides_are_kept_versioned_and_cleared(client: TestClient, admin: Headers) -> None:
    before = answer(client.get(PATH, headers=admin))
    body = {
        "log_level": "DEBUG",
        "doors": {FRONT_DOOR: {"unlock_seconds": 7.0, "fail_mode": "safe"}},
    }
    made = answer(client.put(PATH, json=body, headers=admin))
    shown = answer(client.get(PATH, headers=admin))
    cleared = answer(client.delete(PATH, headers=admin))
    audit = answer(client.get("/audit", params={"entity": "device_overrides"}, headers=admin))

    assert (before["version"], before["applied"], before["doors"]) == (None, False, {})
    assert made["published"] is False  # no broker here: it goes out when the gateway connects
    assert made["doors"] == {
        FRONT_DOOR: {
            **dict.fromkeys(["held_open_seconds", "decision_timeout_seconds", "hold_off_seconds"]),
            "unlock_seconds": 7.0,
            "fail_mode": "safe",
        }
    }
    assert (made["log_level"], made["applied"], made["applied_version"]) == ("DEBUG", False, None)
    assert shown == {**made, "published": None}
    assert cleared["version"] > made["version"]
    assert (cleared["log_level"], cleared["doors"]) == (None, {})
    assert [entry["action"] for entry in audit["items"]] == ["update", "create"]


def test_what_a_device_could_not_run_is_refused_by_the_api(
    client: TestClient, admin: Headers
) -> None:
    cases = {
        "too long": {"doors": {FRONT_DOOR: {"unlock_seconds": 900.0}}},
        "not its door": {"doors": {"meeting-door": {"unlock_seconds": 2.0}}},
        "unknown setting": {"doors": {FRONT_DOOR: {"relay_pin": 5}}},
        "unknown level": {"log_level": "TRACE"},
    }
    answers = {name: client.put(PATH, json=body, headers=admin) for name, body in cases.items()}

    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(cases, 422)
    assert "'meeting-door' is not driven by 'door-ctl-1'" in reason(answers["not its door"])
    assert "relay_pin" in reason(answers["unknown setting"])
    assert answer(client.get(PATH, headers=admin))["version"] is None


def test_a_revoked_device_gets_no_config(client: TestClient, admin: Headers) -> None:
    answer(client.post(f"/devices/{DOOR_DEVICE}/revoke", headers=admin))
    response = client.put(PATH, json={"log_level": "INFO"}, headers=admin)

    assert response.status_code == 409
    assert client.get("/devices/nowhere/overrides", headers=admin).status_code == 404
