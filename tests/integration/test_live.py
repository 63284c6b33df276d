"""The live page's API: desks by area, doors, devices, and who is in, for those who opted in."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.api import create_app
from gateway.store.models import Desk, Member
from tests.factories import DOOR_DEVICE, FRONT_DOOR, SITE, Space, add_desk_node
from tests.integration.conftest import Rig, device_client, tap_for
from varco import protocol
from varco.protocol import Channel, DeskEvent

pytestmark = pytest.mark.integration


@pytest.fixture
async def live(rig: Rig) -> AsyncIterator[httpx.AsyncClient]:
    add_desk_node(rig.gateway.store, {"desk-1": "lobby"})
    with rig.gateway.store.session() as session:
        session.add(Desk(id="room-a", name="Room A", zone_id="offices", kind="room"))
        ada = session.get(Member, rig.space.ada)
        assert ada is not None
        ada.board_opt_in = True
        ada.display_name = "Ada"
        ada.profession = "Mathematician"
        ada.skills = ["analytical engines", "VAT"]
    rig.gateway.reload_policy()
    app = create_app(rig.gateway)
    app.state.gateway = rig.gateway
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://varco") as client:
        yield client


async def state(client: httpx.AsyncClient) -> dict[str, object]:
    response = await client.get("/live/state")
    assert response.status_code == 200
    data: dict[str, object] = response.json()
    return data


async def test_desks_doors_and_people_show_without_a_token(
    rig: Rig, live: httpx.AsyncClient
) -> None:
    async with device_client(rig.broker) as device:
        desk = DeskEvent(
            event_id="desk-evt-000001", desk="desk-1", occupied=True, at=protocol.utcnow()
        )
        await device.publish(
            protocol.topic(SITE, "desk-node-1", Channel.DESK), protocol.encode(desk), qos=1
        )
        for uid, event in (
            (Space.ADA_BADGE, "live-tap-ada-01"),
            (Space.GRACE_BADGE, "live-tap-grace-1"),
        ):
            await device.publish(
                protocol.topic(SITE, DOOR_DEVICE, Channel.TAP),
                protocol.encode(tap_for(uid, event, door=FRONT_DOOR)),
                qos=1,
            )

    async def settled() -> bool:
        data = await state(live)
        return data["present"] == 2 and '"occupied":true' in json.dumps(data, separators=(",", ":"))

    for _ in range(100):
        if await settled():
            break
        await asyncio.sleep(0.05)
    data = await state(live)
    areas = {area["id"]: area for area in data["areas"]}  # type: ignore[attr-defined]
    assert areas["lobby"]["desks"] == [
        {
            "id": "desk-1",
            "name": "Desk 1",
            "kind": "desk",
            "occupied": True,
            "since": desk.at.isoformat(),
        }
    ]
    assert (areas["lobby"]["occupied"], areas["lobby"]["free"]) == (1, 0)
    assert areas["offices"]["desks"][0]["occupied"] is None  # never reported
    assert data["present"] == 2

    board = (await live.get("/live/board")).json()
    assert [m["display_name"] for m in board["members"]] == ["Ada"]
    assert (await live.get("/live/board", params={"skill": "vat"})).json()["members"]
    assert not (await live.get("/live/board", params={"skill": "welding"})).json()["members"]
    everything = json.dumps([data, board])
    assert "Grace" not in everything  # present, but she did not opt in
    assert "Hopper" not in everything
    assert Space.GRACE_BADGE not in everything


async def test_a_page_listening_gets_snapshots_as_things_change(
    rig: Rig, live: httpx.AsyncClient
) -> None:
    queue = rig.gateway.live.subscribe()
    first = [await asyncio.wait_for(queue.get(), 1) for _ in range(2)]
    assert [(m or "").split("\n")[0] for m in first] == ["event: state", "event: board"]

    async with device_client(rig.broker) as device:
        desk = DeskEvent(
            event_id="desk-evt-000002", desk="desk-1", occupied=True, at=protocol.utcnow()
        )
        await device.publish(
            protocol.topic(SITE, "desk-node-1", Channel.DESK), protocol.encode(desk), qos=1
        )
    # Other snapshots may come first (the devices' own status); the desk's within a second.
    occupied = '"id":"desk-1","name":"Desk 1","kind":"desk","occupied":true'
    async with asyncio.timeout(1):
        while occupied not in (message := await queue.get() or ""):
            pass

    assert message.startswith("event: state\ndata: ")
    rig.gateway.live.unsubscribe(queue)


async def test_closing_the_hub_ends_every_stream_after_its_snapshots(rig: Rig) -> None:
    listening = rig.gateway.live.subscribe()
    rig.gateway.live.close()
    late = rig.gateway.live.subscribe()  # a page that asks while the gateway stops
    for queue in (listening, late):
        events = [queue.get_nowait() for _ in range(queue.qsize())]
        assert [e.split("\n")[0] if e else e for e in events] == [
            "event: state",
            "event: board",
            None,
        ]
