"""Desk sensors on gpiozero's MockFactory: pins driven as a person would, changes observed."""

from __future__ import annotations

import asyncio

from gpiozero.pins.mock import MockFactory, MockPin, MockTriggerPin

from edge_agent.config import PirDeskConfig, PressureMatDeskConfig, UltrasonicDeskConfig
from edge_agent.desks import PirSensor, PressureMat, UltrasonicSensor, open_desk_sensor

SPEED_OF_SOUND = 343.26  # m/s, as gpiozero reckons it


class Changes(list[bool]):
    """What a desk sensor reported, in order: pass it as ``on_change``."""

    def __init__(self) -> None:
        super().__init__()
        self._arrived = asyncio.Event()

    def __call__(self, occupied: bool) -> None:
        self.append(occupied)
        self._arrived.set()

    async def reach(self, count: int, within: float = 1.0) -> None:
        """Wait until ``count`` changes have been reported; fail after ``within`` seconds."""
        async with asyncio.timeout(within):
            while len(self) < count:
                self._arrived.clear()
                await self._arrived.wait()


# -- pressure mat ------------------------------------------------------------------------------


async def test_sitting_down_on_a_mat_counts_once_it_has_settled() -> None:
    factory = MockFactory()
    seen = Changes()
    config = PressureMatDeskConfig(id="desk-1", pin=5, bounce_seconds=0, settle_seconds=0.15)
    mat = open_desk_sensor(config, pin_factory=factory, on_change=seen)
    assert isinstance(mat, PressureMat)

    factory.pin(5).drive_low()  # someone sits down
    await asyncio.sleep(0.1)
    assert seen == []
    assert not mat.occupied
    await asyncio.sleep(0.1)

    assert seen == [True]
    assert mat.occupied
    mat.close()


async def test_a_short_bounce_on_the_mat_does_not_count() -> None:
    factory = MockFactory()
    seen = Changes()
    config = PressureMatDeskConfig(id="desk-1", pin=5, bounce_seconds=0, settle_seconds=0.15)
    mat = open_desk_sensor(config, pin_factory=factory, on_change=seen)
    pin = factory.pin(5)

    pin.drive_low()  # a bag dropped on the chair and picked up again
    await asyncio.sleep(0.05)
    pin.drive_high()
    await asyncio.sleep(0.25)
    assert seen == []

    pin.drive_low()  # then someone sits, and shifts for a moment
    await asyncio.sleep(0.2)
    pin.drive_high()
    await asyncio.sleep(0.05)
    pin.drive_low()
    await asyncio.sleep(0.25)

    assert seen == [True]
    assert mat.occupied
    mat.close()


async def test_getting_up_from_the_mat_frees_the_desk_after_settling() -> None:
    factory = MockFactory()
    seen = Changes()
    config = PressureMatDeskConfig(id="desk-1", pin=5, bounce_seconds=0, settle_seconds=0.1)
    mat = open_desk_sensor(config, pin_factory=factory, on_change=seen)
    factory.pin(5).drive_low()
    await seen.reach(1)

    factory.pin(5).drive_high()
    await asyncio.sleep(0.05)
    assert mat.occupied
    await asyncio.sleep(0.1)

    assert seen == [True, False]
    assert not mat.occupied
    mat.close()


async def test_a_mat_without_settle_time_reports_every_change_at_once() -> None:
    factory = MockFactory()
    seen = Changes()
    config = PressureMatDeskConfig(id="desk-1", pin=5, bounce_seconds=0, settle_seconds=0)
    mat = open_desk_sensor(config, pin_factory=factory, on_change=seen)

    factory.pin(5).drive_low()
    await asyncio.sleep(0.02)
    factory.pin(5).drive_high()
    await asyncio.sleep(0.02)

    assert seen == [True, False]
    mat.close()


# -- PIR ---------------------------------------------------------------------------------------
# gpiozero polls a MotionSensor ten times a second, so each change takes up to 0.1 s to show.


class PirOutputPin(MockPin):  # type: ignore[misc]  # gpiozero is untyped
    """A PIR's push-pull output: the pull-down gpiozero sets when it opens does not move it."""

    def _set_pull(self, value: str) -> None:
        self._pull = value


async def test_motion_occupies_the_desk_until_the_hold_time_has_passed() -> None:
    factory = MockFactory()
    seen = Changes()
    config = PirDeskConfig(id="desk-2", pin=7, hold_seconds=0.3)
    pir = open_desk_sensor(config, pin_factory=factory, on_change=seen)
    assert isinstance(pir, PirSensor)
    assert not pir.occupied

    factory.pin(7).drive_high()
    await seen.reach(1, within=0.3)
    factory.pin(7).drive_low()  # the person sits still
    await asyncio.sleep(0.2)
    assert pir.occupied  # still within the hold time
    await asyncio.sleep(0.35)

    assert not pir.occupied
    assert seen == [True, False]
    pir.close()


async def test_motion_during_the_hold_time_extends_it() -> None:
    factory = MockFactory()
    seen = Changes()
    config = PirDeskConfig(id="desk-2", pin=7, hold_seconds=0.3)
    pir = open_desk_sensor(config, pin_factory=factory, on_change=seen)
    pin = factory.pin(7)

    pin.drive_high()
    await seen.reach(1, within=0.3)
    pin.drive_low()
    await asyncio.sleep(0.2)
    pin.drive_high()  # a wave of the hand before the hold ends
    await asyncio.sleep(0.15)
    pin.drive_low()
    await asyncio.sleep(0.25)  # 0.6 s after the first stillness began
    assert pir.occupied

    await asyncio.sleep(0.3)
    assert seen == [True, False]
    pir.close()


async def test_a_pir_that_sees_motion_when_opened_starts_occupied() -> None:
    factory = MockFactory()
    factory.pin(7, pin_class=PirOutputPin).drive_high()  # someone is moving already
    seen = Changes()
    config = PirDeskConfig(id="desk-2", pin=7, hold_seconds=0.1)
    pir = open_desk_sensor(config, pin_factory=factory, on_change=seen)
    assert pir.occupied

    factory.pin(7).drive_low()
    await asyncio.sleep(0.35)

    assert not pir.occupied
    assert seen == [False]
    pir.close()


# -- ultrasonic --------------------------------------------------------------------------------


class Chair:
    """What the HC-SR04 sees: its echo lasts as long as sound takes to the nearest thing."""

    def __init__(self, factory: MockFactory, trigger: int, echo: int) -> None:
        self._trigger = factory.pin(
            trigger, pin_class=MockTriggerPin, echo_pin=factory.pin(echo), echo_time=0.04
        )
        self.empty()

    def at(self, metres: float) -> None:
        self._trigger.echo_time = 2 * metres / SPEED_OF_SOUND

    def empty(self) -> None:
        self.at(6.0)  # the far wall, beyond the sensor's range


def ultrasonic(
    factory: MockFactory, seen: Changes, *, samples: int, sample_seconds: float
) -> UltrasonicSensor:
    # A 2 m threshold and a person at 0.1 m: the mock echo's thread timing can add tens of
    # centimetres to a reading, never a metre.
    config = UltrasonicDeskConfig(
        id="desk-3",
        trigger_pin=23,
        echo_pin=24,
        threshold_m=2.0,
        sample_seconds=sample_seconds,
        samples=samples,
    )
    sensor = open_desk_sensor(config, pin_factory=factory, on_change=seen)
    assert isinstance(sensor, UltrasonicSensor)
    return sensor


async def test_someone_nearer_than_the_threshold_occupies_the_desk_and_leaving_frees_it() -> None:
    factory = MockFactory()
    chair = Chair(factory, trigger=23, echo=24)
    seen = Changes()
    sensor = ultrasonic(factory, seen, samples=3, sample_seconds=0.05)
    await asyncio.sleep(0.3)
    assert not sensor.occupied

    chair.at(0.1)
    await seen.reach(1)
    chair.empty()
    await seen.reach(2)

    assert seen == [True, False]
    sensor.close()


async def test_a_reading_or_two_across_the_threshold_does_not_count() -> None:
    factory = MockFactory()
    chair = Chair(factory, trigger=23, echo=24)
    seen = Changes()
    # Five readings 0.1 s apart: a change must last about half a second to count.
    sensor = ultrasonic(factory, seen, samples=5, sample_seconds=0.1)
    await asyncio.sleep(0.2)

    chair.at(0.1)  # someone walks past the desk
    await asyncio.sleep(0.15)
    chair.empty()
    await asyncio.sleep(0.6)
    assert seen == []

    chair.at(0.1)  # and then sits down
    await seen.reach(1, within=1.5)
    assert seen == [True]
    sensor.close()
