"""Door relay and contacts on gpiozero's MockFactory: pins driven, devices observed."""

from __future__ import annotations

import asyncio

from gpiozero.pins.mock import MockFactory

from edge_agent.hardware import Contact, DoorRelay


async def test_a_pulse_unlocks_then_relocks_after_the_time() -> None:
    factory = MockFactory()
    relay = DoorRelay(17, active_high=True, pin_factory=factory)

    relay.pulse(0.2)
    assert relay.is_unlocked
    assert factory.pin(17).state
    await asyncio.sleep(0.3)

    assert not relay.is_unlocked
    states = factory.pin(17).states
    assert [s.state for s in states] == [False, True, False]
    assert 0.2 <= states[2].timestamp < 0.3
    relay.close()


async def test_an_active_low_relay_drives_its_pin_low_to_unlock() -> None:
    factory = MockFactory()
    relay = DoorRelay(17, active_high=False, pin_factory=factory)
    assert factory.pin(17).state  # locked is high on an active-low board

    relay.pulse(0.1)

    assert not factory.pin(17).state
    await asyncio.sleep(0.2)
    assert factory.pin(17).state
    relay.close()


async def test_a_second_grant_restarts_the_unlock_time() -> None:
    factory = MockFactory()
    relay = DoorRelay(17, active_high=True, pin_factory=factory)

    relay.pulse(0.2)
    await asyncio.sleep(0.15)
    relay.pulse(0.2)
    await asyncio.sleep(0.15)
    assert relay.is_unlocked  # 0.3 s after the first grant, still open
    await asyncio.sleep(0.15)

    assert not relay.is_unlocked
    assert [s.state for s in factory.pin(17).states] == [False, True, False]
    relay.close()


async def test_contact_changes_arrive_on_the_event_loop() -> None:
    factory = MockFactory()
    seen: list[bool] = []
    contact = Contact(5, on_change=seen.append, pin_factory=factory, bounce_seconds=None)
    pin = factory.pin(5)

    pin.drive_low()
    await asyncio.sleep(0.05)
    pin.drive_high()
    await asyncio.sleep(0.05)

    assert seen == [True, False]
    assert not contact.is_closed
    contact.close()
