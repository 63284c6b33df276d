"""Door relay and contacts on gpiozero's MockFactory: pins driven, devices observed.

Durations come from the pins' own timestamps (a ``PinState``'s is the time since the pin's
previous change); a busy machine may add up to ``SLACK`` to a timed change, never take away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest
from gpiozero.pins.mock import MockFactory

from edge_agent.agent import pin_factory_for
from edge_agent.config import DoorConfig, EdgeConfig
from edge_agent.hardware import Contact, DoorRelay, Indicator, mock_factory

SLACK = 1.0
EARLY = 0.002  # asyncio's timers may fire within the clock's resolution of their time


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Wait until ``condition()`` holds; fail after ``seconds``."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - a pin's state has no event to await
            await asyncio.sleep(0.01)


def held(factory: MockFactory, pin: int, change: int) -> float:
    """How long ``pin`` stayed as it was before its ``change``-th change (from 1)."""
    return float(factory.pin(pin).states[change].timestamp)


async def test_a_pulse_unlocks_then_relocks_after_the_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    factory = MockFactory()
    relay = DoorRelay(17, active_high=True, pin_factory=factory)

    with caplog.at_level(logging.INFO):
        relay.pulse(0.2)
        assert relay.is_unlocked
        assert factory.pin(17).state
        await until(lambda: not relay.is_unlocked)

    assert [s.state for s in factory.pin(17).states] == [False, True, False]
    assert 0.2 - EARLY <= held(factory, 17, 2) < 0.2 + SLACK
    assert [r.getMessage() for r in caplog.records] == [
        "relay on GPIO 17: unlocked for 0.2 s",
        "relay on GPIO 17: locked",
    ]
    relay.close()


async def test_an_active_low_relay_drives_its_pin_low_to_unlock() -> None:
    factory = MockFactory()
    relay = DoorRelay(17, active_high=False, pin_factory=factory)
    assert factory.pin(17).state  # locked is high on an active-low board

    relay.pulse(0.1)

    assert not factory.pin(17).state
    await until(lambda: factory.pin(17).state)
    assert [s.state for s in factory.pin(17).states] == [False, True, False, True]
    assert 0.1 - EARLY <= held(factory, 17, 3) < 0.1 + SLACK
    relay.close()


async def test_a_second_grant_restarts_the_unlock_time() -> None:
    factory = MockFactory()
    relay = DoorRelay(17, active_high=True, pin_factory=factory)

    loop = asyncio.get_running_loop()
    first = loop.time()
    relay.pulse(0.2)
    await asyncio.sleep(0.15)
    second = loop.time()
    relay.pulse(0.2)
    await until(lambda: not relay.is_unlocked)

    # One unlock, no relock in between, and it lasted 0.2 s from the second grant.
    assert [s.state for s in factory.pin(17).states] == [False, True, False]
    assert second - first + 0.2 - EARLY <= held(factory, 17, 2) < second - first + 0.2 + SLACK
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
    await until(lambda: len(factory.pin(22).states) == 3 and len(factory.pin(24).states) == 3)

    assert _states(factory, 22) == [False, True, False]
    assert 0.2 - EARLY <= held(factory, 22, 2) < 0.2 + SLACK
    assert _states(factory, 24) == [False, True, False]
    assert 0.05 - EARLY <= held(factory, 24, 2) < 0.05 + SLACK
    assert _states(factory, 23) == [False]  # red stays dark
    indicator.close()


async def test_a_denial_lights_red_for_a_moment_and_beeps_three_times() -> None:
    factory = MockFactory()
    indicator = Indicator(22, 23, 24, pin_factory=factory, beep_seconds=0.03, denied_seconds=0.25)

    indicator.denied()
    assert factory.pin(23).state
    await until(lambda: len(factory.pin(23).states) == 3 and len(factory.pin(24).states) == 7)

    assert _states(factory, 23) == [False, True, False]
    assert 0.25 - EARLY <= held(factory, 23, 2) < 0.25 + SLACK
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


async def test_mock_pins_start_with_the_doors_reed_switch_closed() -> None:
    # On a laptop the door starts shut: no "opened" at start, no held_open after a grant.
    config = EdgeConfig(
        device_id="d1",
        site="milano",
        pin_factory="mock",
        doors=[DoorConfig(id="front", relay_pin=17, contact_pin=27, exit_button_pin=22)],
    )
    factory = pin_factory_for(config)
    contact = Contact(27, on_change=lambda closed: None, pin_factory=factory)
    exit_button = Contact(22, on_change=lambda pressed: None, pin_factory=factory)

    assert contact.is_closed
    assert not exit_button.is_closed  # a button at rest is open
    factory.pin(27).drive_high()  # and the door can still be opened
    assert not contact.is_closed
    contact.close()
    exit_button.close()


async def test_a_closed_switch_reports_opening_and_closing() -> None:
    factory = mock_factory(closed_switches=[5])
    seen: list[bool] = []
    contact = Contact(5, on_change=seen.append, pin_factory=factory, bounce_seconds=None)

    factory.pin(5).drive_high()
    factory.pin(5).drive_low()
    await until(lambda: len(seen) == 2)

    assert seen == [False, True]
    contact.close()
