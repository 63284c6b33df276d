"""Door contacts, alarms and desk sensors on MockFactory, through the broker to the gateway."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from edge_agent.agent import Agent
from edge_agent.config import (
    BrokerConfig,
    DoorConfig,
    EdgeConfig,
    PressureMatDeskConfig,
    Secret,
)
from gateway.service import Gateway
from gateway.store import Store
from gateway.store.models import DeskEventRecord, Door, DoorEventRecord
from tests.conftest import Mosquitto
from tests.factories import DOOR_DEVICE, FRONT_DOOR, SITE, add_desk_node, make_space
from tests.integration.conftest import allowlist_key, eventually, gateway_settings

pytestmark = pytest.mark.integration

RELAY, CONTACT, EXIT_BUTTON = 17, 27, 22
DESK_NODE = "desk-node-1"
DESK_PINS = {"desk-1": 5, "desk-2": 6}


@contextlib.asynccontextmanager
async def running(agent: Agent) -> AsyncIterator[Agent]:
    ready = asyncio.Event()
    task = asyncio.create_task(agent.run(ready))
    await asyncio.wait_for(ready.wait(), timeout=5)
    await asyncio.wait_for(agent.link.connected.wait(), timeout=5)
    try:
        yield agent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def site(mosquitto: Mosquitto, tmp_path: Path) -> AsyncIterator[tuple[Gateway, Agent, Agent]]:
    database = tmp_path / "varco.db"
    with Store(f"sqlite:///{database}") as store:
        make_space(store)
        add_desk_node(store, dict.fromkeys(DESK_PINS, "lobby"), device=DESK_NODE)
    broker = BrokerConfig(port=mosquitto.port)
    door_controller = Agent(
        EdgeConfig(
            device_id=DOOR_DEVICE,
            site=SITE,
            broker=broker,
            pin_factory="mock",
            state_dir=tmp_path / "door",
            allowlist_key=Secret(allowlist_key(database)),
            doors=[
                DoorConfig(
                    id=FRONT_DOOR,
                    relay_pin=RELAY,
                    contact_pin=CONTACT,
                    exit_button_pin=EXIT_BUTTON,
                    held_open_seconds=0.4,
                    unlock_seconds=1.0,
                )
            ],
        )
    )
    desk_node = Agent(
        EdgeConfig(
            device_id=DESK_NODE,
            site=SITE,
            broker=broker,
            pin_factory="mock",
            state_dir=tmp_path / "desks",
            desks=[
                PressureMatDeskConfig(id=desk, pin=pin, settle_seconds=0)
                for desk, pin in DESK_PINS.items()
            ],
        )
    )
    async with Gateway(gateway_settings(database, mosquitto)) as gateway:
        assert gateway.ingest is not None
        # Subscribed before the devices speak: what a new broker takes before that reaches
        # no one, and comes again only when its receipt is overdue.
        await asyncio.wait_for(gateway.ingest.connected.wait(), timeout=5)
        async with running(door_controller), running(desk_node):
            # Mock pins start with the reed switch closed: the door says it is shut, no more.
            await eventually(lambda: door_states(gateway) == ["closed"])
            yield gateway, door_controller, desk_node


def door_states(gateway: Gateway) -> list[str]:
    with gateway.store.session() as session:
        rows = session.scalars(select(DoorEventRecord).order_by(DoorEventRecord.at))
        return [row.state for row in rows]


async def test_a_door_opened_without_a_grant_raises_forced_open(
    site: tuple[Gateway, Agent, Agent],
) -> None:
    gateway, door_controller, _ = site
    contact = door_controller.pin_factory.pin(CONTACT)

    contact.drive_high()  # someone pulls the door open; nobody badged
    await eventually(lambda: door_states(gateway)[1:] == ["opened", "forced_open"])
    contact.drive_low()
    await eventually(lambda: door_states(gateway)[-1] == "closed")

    assert gateway.occupancy.doors[FRONT_DOOR][0] == "closed"
    with gateway.store.session() as session:
        door = session.get(Door, FRONT_DOOR)
        assert door is not None
        assert door.state == "closed"


async def test_leaving_through_the_exit_button_is_not_forced_but_propping_the_door_is_held_open(
    site: tuple[Gateway, Agent, Agent],
) -> None:
    gateway, door_controller, _ = site
    pins = door_controller.pin_factory

    pins.pin(EXIT_BUTTON).drive_low()  # pressed
    await eventually(lambda: bool(pins.pin(RELAY).state))  # the exit button unlocks the door
    pins.pin(EXIT_BUTTON).drive_high()
    pins.pin(CONTACT).drive_high()  # out they go, and leave the door open

    await eventually(lambda: door_states(gateway)[1:] == ["opened", "held_open"])
    assert "forced_open" not in door_states(gateway)


async def test_desk_sensors_report_their_start_and_every_change(
    site: tuple[Gateway, Agent, Agent],
) -> None:
    gateway, _, desk_node = site

    await eventually(lambda: set(gateway.occupancy.desks) == set(DESK_PINS))
    assert gateway.occupancy.occupied_desks == 0
    desk_node.pin_factory.pin(DESK_PINS["desk-2"]).drive_low()  # someone sits down
    await eventually(lambda: gateway.occupancy.occupied_desks == 1)
    assert gateway.occupancy.desks["desk-2"].occupied

    await gateway.writer.join()
    with gateway.store.session() as session:
        rows = list(
            session.scalars(select(DeskEventRecord).where(DeskEventRecord.desk_id == "desk-2"))
        )
    assert [row.occupied for row in sorted(rows, key=lambda r: r.at)] == [False, True]
    assert {row.device_id for row in rows} == {DESK_NODE}
