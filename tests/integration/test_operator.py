"""An operator at the API opens a door from afar and locks one down; the door obeys."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from gateway.api import create_app
from gateway.store.models import GuestPass
from tests.factories import FRONT_DOOR, OFFICE_DOOR, Space
from tests.integration.conftest import FRONT_RELAY, Rig, eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(rig: Rig) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(rig.gateway)  # the rig runs the gateway; the app only serves it
    app.state.gateway = rig.gateway
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {rig.space.admin_token}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://varco", headers=headers
    ) as client:
        yield client


async def test_a_remote_unlock_opens_the_door_and_is_audited(
    rig: Rig, api: httpx.AsyncClient
) -> None:
    response = await api.post(f"/doors/{FRONT_DOOR}/unlock", json={"seconds": 0.3})

    assert response.status_code == 202, response.text
    relay = rig.agent.pin_factory.pin(FRONT_RELAY)
    await eventually(lambda: bool(relay.state))
    await eventually(lambda: not relay.state)
    audit = (await api.get("/audit", params={"entity": "door"})).json()["items"]
    assert audit[0]["action"] == "command"
    assert audit[0]["entity_id"] == FRONT_DOOR
    assert audit[0]["actor"] == "test admin"


async def test_a_lockdown_keeps_everyone_out_online_and_offline(
    rig: Rig, api: httpx.AsyncClient
) -> None:
    cache = rig.agent.cache
    await eventually(lambda: cache.current is not None)

    response = await api.put(f"/doors/{FRONT_DOOR}/lockdown")
    assert response.status_code == 200, response.text
    await eventually(lambda: rig.agent.doors[FRONT_DOOR].locked_down)
    online = await rig.present(FRONT_DOOR, Space.ADA_BADGE)
    refused = await api.post(f"/doors/{FRONT_DOOR}/unlock", json={})
    rig.broker.stop()
    await eventually(lambda: not rig.agent.link.connected.is_set())
    offline = await rig.present(FRONT_DOOR, Space.ADA_BADGE)

    assert (online.granted, online.reason, online.answered) == (False, "lockdown", True)
    assert refused.status_code == 409
    assert (offline.granted, offline.reason, offline.answered) == (False, "lockdown", False)
    assert rig.relay_states(FRONT_RELAY) == [(0.0, False)]


def window_around_now() -> dict[str, object]:
    """Every day, from an hour ago to an hour from now (the test site keeps UTC)."""
    now = datetime.now(UTC)
    return {
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=1)).strftime("%H:%M"),
    }


async def test_office_hours_hold_the_door_unlocked_after_the_first_entry(
    rig: Rig, api: httpx.AsyncClient
) -> None:
    relay = rig.agent.pin_factory.pin(FRONT_RELAY)
    door = rig.agent.doors[FRONT_DOOR]

    response = await api.patch(
        f"/doors/{FRONT_DOOR}",
        json={"open_windows": [window_around_now()], "open_after_first_entry": True},
    )
    assert response.status_code == 200, response.text
    assert response.json()["open_after_first_entry"] is True
    await eventually(
        lambda: (
            rig.agent.cache.current is not None
            and bool(rig.agent.cache.current.doors[FRONT_DOOR].open_windows)
        )
    )
    assert not relay.state  # nobody authorised has come in yet

    granted = await rig.present(FRONT_DOOR, Space.ADA_BADGE)
    assert granted.granted
    await asyncio.sleep(0.6)  # past the grant's own unlock time
    assert relay.state  # held open for the day
    assert door.relay.is_held

    response = await api.patch(f"/doors/{FRONT_DOOR}", json={"open_windows": []})
    assert response.status_code == 200, response.text
    await eventually(lambda: not relay.state)  # office hours over: locked again


async def test_a_guest_shows_the_qr_code_of_a_pass_at_the_doors_the_host_chose(
    rig: Rig, api: httpx.AsyncClient
) -> None:
    now = datetime.now(UTC)
    created = await api.post(
        "/passes",
        json={
            "guest_name": "Katherine Johnson",
            "host_member_id": rig.space.ada,
            "valid_from": (now - timedelta(minutes=5)).isoformat(),
            "valid_until": (now + timedelta(hours=2)).isoformat(),
            "doors": [FRONT_DOOR],
        },
    )
    assert created.status_code == 201, created.text
    guest_pass = created.json()
    await eventually(
        lambda: (
            rig.agent.cache.current is not None and rig.agent.cache.current.credentials == 3
        )  # Ada, Grace, pass
    )

    welcome = await rig.present(FRONT_DOOR, guest_pass["qr_text"])
    elsewhere = await rig.present(OFFICE_DOOR, guest_pass["qr_text"])
    rig.broker.stop()  # offline, the door still knows the pass
    await eventually(lambda: not rig.agent.link.connected.is_set())
    offline = await rig.present(FRONT_DOOR, guest_pass["qr_text"])

    assert (welcome.granted, welcome.reason) == (True, "granted")
    assert (elsewhere.granted, elsewhere.reason) == (False, "wrong_zone")
    assert (offline.granted, offline.reason, offline.answered) == (True, "granted", False)
    await rig.gateway.writer.join()
    [event] = rig.access_events(welcome.event_id)
    # The log keeps which pass it was, never its code: the code opens the door.
    assert (event.credential_kind, event.credential) == ("pass", f"pass-{guest_pass['id']}")
    with rig.gateway.store.session() as session:
        [stored] = session.scalars(select(GuestPass))
        assert stored.code_hash == hashlib.sha256(guest_pass["code"].encode()).hexdigest()
        dump = "\n".join(session.connection().connection.iterdump())
    assert guest_pass["code"] not in dump


async def test_no_one_reads_a_pass_code_back_from_the_api_or_the_logs(
    rig: Rig, api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    now = datetime.now(UTC)
    created = await api.post(
        "/passes",
        json={
            "guest_name": "Katherine Johnson",
            "event": "Open day",
            "valid_from": (now - timedelta(minutes=5)).isoformat(),
            "valid_until": (now + timedelta(hours=2)).isoformat(),
            "doors": [FRONT_DOOR],
        },
    )
    assert created.status_code == 201, created.text
    code = created.json()["code"]
    await eventually(
        lambda: (
            rig.agent.cache.current is not None and rig.agent.cache.current.credentials == 3
        )  # Ada, Grace, pass
    )
    tap = await rig.present(FRONT_DOOR, f"varco-pass:{code}")
    assert tap.granted
    await rig.gateway.writer.join()

    pages = {}
    for token in (rig.space.viewer_token, rig.space.admin_token):
        for path in ("/passes", "/access-events", "/audit", "/badges", "/members"):
            response = await api.get(path, headers={"Authorization": f"Bearer {token}"})
            pages[token[-6:], path] = response.text
            assert code not in response.text, path
            assert code.lower() not in response.text.lower(), path

    events = json.loads(pages[rig.space.viewer_token[-6:], "/access-events"])["items"]
    assert [(e["credential_kind"], e["credential"]) for e in events] == [
        ("pass", f"pass-{created.json()['id']}")
    ]
    # Nor does any log line, at any level: neither the code nor the tokens that were used.
    script = (await api.post("/tokens", json={"name": "script", "role": "viewer"})).json()
    await api.get("/passes", headers={"Authorization": f"Bearer {script['token']}"})
    await api.post("/zones", content=b"{", headers={"Authorization": "Bearer vk_wrong"})
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (code, script["token"], rig.space.admin_token, rig.space.viewer_token):
        assert secret not in logged
        assert secret.lower() not in logged.lower()
