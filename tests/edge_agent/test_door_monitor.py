"""Door alarms from unlock windows and contact changes, on real asyncio timers."""

from __future__ import annotations

import asyncio

from gpiozero.pins.mock import MockFactory

from edge_agent.door_monitor import DoorMonitor
from edge_agent.hardware import Contact, DoorRelay
from varco.protocol import DoorState

OPENED, CLOSED = DoorState.OPENED, DoorState.CLOSED
FORCED_OPEN, HELD_OPEN = DoorState.FORCED_OPEN, DoorState.HELD_OPEN


def monitor(held_open_seconds: float = 0.2) -> tuple[DoorMonitor, list[DoorState]]:
    seen: list[DoorState] = []
    return DoorMonitor(held_open_seconds, seen.append), seen


async def test_a_door_opened_without_a_grant_is_forced_open() -> None:
    door, seen = monitor()

    door.contact(closed=False)
    door.contact(closed=True)

    assert seen == [OPENED, FORCED_OPEN, CLOSED]


async def test_a_door_opened_after_a_grant_is_just_opened_and_closed() -> None:
    door, seen = monitor()

    door.authorise(1.0)
    door.contact(closed=False)
    door.contact(closed=True)

    assert seen == [OPENED, CLOSED]
    door.close()


async def test_the_exit_button_lets_people_out_without_a_forced_alarm() -> None:
    factory = MockFactory()
    door, seen = monitor()
    relay = DoorRelay(17, active_high=True, pin_factory=factory)

    def request_to_exit(pressed: bool) -> None:
        if pressed:
            relay.pulse(0.5)
            door.authorise(0.5)

    exit_button = Contact(6, on_change=request_to_exit, pin_factory=factory, bounce_seconds=None)
    reed = Contact(5, on_change=door.contact, pin_factory=factory, bounce_seconds=None)
    factory.pin(5).drive_low()  # the door is shut
    await asyncio.sleep(0.02)
    seen.clear()

    factory.pin(6).drive_low()  # press to exit
    await asyncio.sleep(0.02)
    factory.pin(5).drive_high()  # the door swings open
    await asyncio.sleep(0.02)

    assert relay.is_unlocked
    assert seen == [OPENED]
    for device in (exit_button, reed, relay, door):
        device.close()


async def test_an_opening_after_the_unlock_window_ends_is_forced() -> None:
    door, seen = monitor()

    door.authorise(0.05)
    await asyncio.sleep(0.1)
    door.contact(closed=False)

    assert seen == [OPENED, FORCED_OPEN]


async def test_a_second_opening_within_the_same_unlock_window_is_not_forced() -> None:
    door, seen = monitor()

    door.authorise(0.5)
    door.contact(closed=False)
    door.contact(closed=True)
    door.contact(closed=False)

    assert seen == [OPENED, CLOSED, OPENED]
    door.close()


async def test_a_door_left_open_after_a_grant_is_held_open_once() -> None:
    door, seen = monitor(held_open_seconds=0.15)

    door.authorise(0.05)
    door.contact(closed=False)
    await asyncio.sleep(0.1)
    assert seen == [OPENED]  # not yet
    await asyncio.sleep(0.3)  # twice the limit: still one alarm

    assert seen == [OPENED, HELD_OPEN]
    door.contact(closed=True)
    assert seen == [OPENED, HELD_OPEN, CLOSED]


async def test_closing_the_door_in_time_cancels_the_held_open_alarm() -> None:
    door, seen = monitor(held_open_seconds=0.15)

    door.authorise(0.05)
    door.contact(closed=False)
    await asyncio.sleep(0.1)
    door.contact(closed=True)
    await asyncio.sleep(0.15)

    assert seen == [OPENED, CLOSED]


async def test_a_grant_to_an_open_door_raises_no_forced_alarm_and_restarts_the_clock() -> None:
    door, seen = monitor(held_open_seconds=0.15)
    door.authorise(0.05)
    door.contact(closed=False)
    await asyncio.sleep(0.1)

    door.authorise(0.05)  # someone badges in through the open door
    await asyncio.sleep(0.1)  # 0.2 s after the opening, 0.1 s after the grant
    assert seen == [OPENED]
    await asyncio.sleep(0.1)

    assert seen == [OPENED, HELD_OPEN]


async def test_a_forced_door_raises_no_second_alarm_when_a_grant_follows() -> None:
    door, seen = monitor(held_open_seconds=0.1)
    door.contact(closed=False)

    door.authorise(0.05)
    await asyncio.sleep(0.2)

    assert seen == [OPENED, FORCED_OPEN]


async def test_a_repeated_contact_reading_is_not_a_change() -> None:
    door, seen = monitor()

    door.contact(closed=True)  # it was shut already
    door.authorise(0.5)
    door.contact(closed=False)
    door.contact(closed=False)

    assert seen == [OPENED]
    door.close()


async def test_a_door_found_open_reports_its_closing() -> None:
    seen: list[DoorState] = []
    door = DoorMonitor(0.2, seen.append, closed=False)

    door.contact(closed=True)

    assert seen == [CLOSED]
    assert door.is_closed
