"""Door relay and contacts on gpiozero's MockFactory: pins driven, devices observed."""

from __future__ import annotations

import asyncio

from gpiozero.pins.mock import MockFactory

from edge_agent.hardware import Contact, DoorRelay, Indicator


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


def _states(factory: MockFactory, pin: int) -> list[bool]:
    return [s.state for s in factory.pin(pin).states]


async def test_a_grant_lights_green_for_the_unlock_time_and_beeps_once() -> None:
    factory = MockFactory()
    indicator = Indicator(22, 23, 24, pin_factory=factory, beep_seconds=0.05)

    indicator.granted(0.2)
    assert factory.pin(22).state
    await asyncio.sleep(0.3)

    assert _states(factory, 22) == [False, True, False]
    assert 0.2 <= factory.pin(22).states[2].timestamp < 0.28
    beep = factory.pin(24).states
    assert [s.state for s in beep] == [False, True, False]
    assert 0.05 <= beep[2].timestamp < 0.1
    assert _states(factory, 23) == [False]  # red stays dark
    indicator.close()


async def test_a_denial_lights_red_for_a_moment_and_beeps_three_times() -> None:
    factory = MockFactory()
    indicator = Indicator(22, 23, 24, pin_factory=factory, beep_seconds=0.03, denied_seconds=0.25)

    indicator.denied()
    assert factory.pin(23).state
    await asyncio.sleep(0.35)

    assert _states(factory, 23) == [False, True, False]
    assert 0.25 <= factory.pin(23).states[2].timestamp < 0.33
    assert _states(factory, 24) == [False, True, False, True, False, True, False]
    assert _states(factory, 22) == [False]  # green stays dark
    indicator.close()


async def test_a_grant_right_after_a_denial_turns_red_off_at_once() -> None:
    factory = MockFactory()
    indicator = Indicator(22, 23, None, pin_factory=factory, denied_seconds=1.0)

    indicator.denied()
    await asyncio.sleep(0.05)
    indicator.granted(0.1)

    assert not factory.pin(23).state
    assert factory.pin(22).state
    indicator.close()


async def test_an_indicator_with_only_a_green_led_shows_grants_and_puts_them_out() -> None:
    factory = MockFactory()
    indicator = Indicator(22, None, None, pin_factory=factory)

    indicator.granted(1.0)
    assert factory.pin(22).state
    indicator.denied()  # no red LED, no buzzer: the green goes out and that is all

    assert _states(factory, 22) == [False, True, False]
    indicator.close()
