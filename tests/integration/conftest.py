"""Fixtures for the end-to-end tests: a gateway and a door controller on a real mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import select

from edge_agent.agent import Agent
from edge_agent.config import BrokerConfig, DoorConfig, EdgeConfig, Secret
from edge_agent.door import Outcome
from edge_agent.readers import SimulatedReader
from gateway.service import Gateway
from gateway.settings import Settings
from gateway.store import Store
from gateway.store.models import AccessEvent, Device
from tests.conftest import Mosquitto
from tests.factories import DOOR_DEVICE, FRONT_DOOR, OFFICE_DOOR, SITE, Space, make_space
from varco import protocol, transport
from varco.protocol import Channel, Credential, Decision, Tap

# Longer than the 1 s default: a loaded CI machine must not turn an online answer offline.
DECISION_TIMEOUT = 2.0
FRONT_RELAY = 17
OFFICE_RELAY = 22


async def eventually(predicate: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {within}s: {predicate}")
        await asyncio.sleep(0.02)


@dataclass
class Rig:
    gateway: Gateway
    agent: Agent
    space: Space
    outcomes: asyncio.Queue[Outcome]
    broker: Mosquitto
    agent_task: asyncio.Task[None]

    def relay_states(self, pin: int) -> list[tuple[float, bool]]:
        """Every state the relay pin has been in, each with the seconds since the one before."""
        return [(s.timestamp, bool(s.state)) for s in self.agent.pin_factory.pin(pin).states]

    async def present(self, door: str, uid: str) -> Outcome:
        reader = self.agent.doors[door].reader
        assert isinstance(reader, SimulatedReader)
        reader.present(uid)
        return await asyncio.wait_for(self.outcomes.get(), timeout=5)

    def access_events(self, event_id: str | None = None) -> list[AccessEvent]:
        with self.gateway.store.session() as session:
            query = select(AccessEvent)
            if event_id is not None:
                query = query.where(AccessEvent.event_id == event_id)
            return list(session.scalars(query))


def gateway_settings(database: Path, broker: Mosquitto) -> Settings:
    return Settings(
        database_url=f"sqlite:///{database}",
        mqtt_port=broker.port,
        gateway_id="gateway-test",
        policy_refresh_seconds=3600,
    )


def allowlist_key(database: Path) -> str:
    with Store(f"sqlite:///{database}") as store, store.session() as session:
        device = session.get(Device, DOOR_DEVICE)
        assert device is not None
        return device.allowlist_key


def door_controller(broker: Mosquitto, state_dir: Path, key: str) -> Agent:
    return Agent(
        EdgeConfig(
            device_id=DOOR_DEVICE,
            site=SITE,
            broker=BrokerConfig(port=broker.port),
            pin_factory="mock",
            state_dir=state_dir,
            allowlist_key=Secret(key),
            doors=[
                DoorConfig(
                    id=FRONT_DOOR, relay_pin=FRONT_RELAY, decision_timeout_seconds=DECISION_TIMEOUT
                ),
                # The offices open when nothing is known (fail-safe); the front door stays shut.
                DoorConfig(
                    id=OFFICE_DOOR,
                    relay_pin=OFFICE_RELAY,
                    fail_mode="safe",
                    decision_timeout_seconds=DECISION_TIMEOUT,
                ),
            ],
        )
    )


@dataclass
class RunningAgent:
    agent: Agent
    outcomes: asyncio.Queue[Outcome]
    task: asyncio.Task[None]


@contextlib.asynccontextmanager
async def running_door_controller(
    broker: Mosquitto, tmp_path: Path, database: Path
) -> AsyncIterator[RunningAgent]:
    """Run the door controller of ``tests.factories`` until the block ends."""
    agent = door_controller(broker, tmp_path / "edge", allowlist_key(database))
    outcomes: asyncio.Queue[Outcome] = asyncio.Queue()
    ready = asyncio.Event()
    task = asyncio.create_task(agent.run(ready))
    await asyncio.wait_for(ready.wait(), timeout=5)
    await asyncio.wait_for(agent.link.connected.wait(), timeout=5)
    for door in agent.doors.values():
        door.outcomes.append(outcomes.put_nowait)
    try:
        yield RunningAgent(agent, outcomes, task)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def rig(mosquitto: Mosquitto, tmp_path: Path) -> AsyncIterator[Rig]:
    database = tmp_path / "varco.db"
    with Store(f"sqlite:///{database}") as store:
        space = make_space(store)
    async with Gateway(gateway_settings(database, mosquitto)) as gateway:
        assert gateway.ingest is not None
        await asyncio.wait_for(gateway.ingest.connected.wait(), timeout=5)
        async with running_door_controller(mosquitto, tmp_path, database) as running:
            yield Rig(gateway, running.agent, space, running.outcomes, mosquitto, running.task)


@contextlib.asynccontextmanager
async def device_client(broker: Mosquitto) -> AsyncIterator[aiomqtt.Client]:
    """A bare MQTT client speaking as the door controller."""
    client = transport.client(
        transport.BrokerAddress(port=broker.port), identifier=f"{DOOR_DEVICE}-raw"
    )
    async with client:
        await client.subscribe(protocol.topic(SITE, DOOR_DEVICE, Channel.DECISION), qos=1)
        yield client


def tap_for(uid: str, event_id: str, door: str = FRONT_DOOR) -> Tap:
    return Tap(event_id=event_id, door=door, credential=Credential(value=uid), at=protocol.utcnow())


async def next_decision(client: aiomqtt.Client, event_id: str) -> Decision:
    async with asyncio.timeout(5):
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            decision = protocol.decode_as(Decision, message.payload)
            if decision.event_id == event_id:
                return decision
    raise AssertionError("no decision")  # pragma: no cover - the loop only ends by timeout
