"""Simulated people: they tap cards at doors, walk through, and sit at desks."""

from __future__ import annotations

import asyncio
import random

from edge_agent.agent import Agent
from edge_agent.config import PressureMatDeskConfig
from edge_agent.door import Outcome
from edge_agent.readers import SimulatedReader
from varco.demo.space import CARDS


class People:
    """Drives the simulated readers and pins of the demo's agents."""

    def __init__(self, doors: Agent | list[Agent], desks: Agent, rng: random.Random) -> None:
        self._door_agents = doors if isinstance(doors, list) else [doors]
        self._desks = desks
        self._rng = rng

    async def tap_at_random(self) -> None:
        """Someone presents a card at some door every second or so."""
        while True:
            await asyncio.sleep(self._rng.uniform(0.4, 1.2))
            agent = self._rng.choice(self._door_agents)
            door = self._rng.choice(list(agent.doors.values()))
            reader = door.reader
            if isinstance(reader, SimulatedReader):
                reader.present(self._rng.choice(CARDS).uid)

    def walk_through(self, agent: Agent, outcome: Outcome) -> None:
        """After a grant, the door is opened and shut again, as the contact reports."""
        if outcome.granted:
            asyncio.get_running_loop().create_task(self._open_and_close(agent, outcome.door))

    async def _open_and_close(self, agent: Agent, door_id: str) -> None:
        contact = agent.doors[door_id].config.contact_pin
        if contact is None:
            return
        pin = agent.pin_factory.pin(contact)
        await asyncio.sleep(self._rng.uniform(0.3, 0.8))
        pin.drive_high()  # the reed switch opens with the door
        # Now and then someone props the door open past its held-open time.
        propped = self._rng.random() < 0.08
        await asyncio.sleep(self._rng.uniform(6.0, 7.0) if propped else self._rng.uniform(1.0, 2.0))
        pin.drive_low()

    async def sit_and_leave(self) -> None:
        """Desks are taken and freed at random, through their pressure mats."""
        desks = list(self._desks.desks.values())
        while True:
            await asyncio.sleep(self._rng.uniform(0.8, 2.5))
            desk = self._rng.choice(desks)
            if not isinstance(desk.config, PressureMatDeskConfig):
                continue
            pin = self._desks.pin_factory.pin(desk.config.pin)
            if desk.sensor.occupied:
                pin.drive_high()
            else:
                pin.drive_low()
