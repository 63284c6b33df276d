"""Door and desk hardware through gpiozero, with the pin factory passed in from the agent.

gpiozero calls back on its own threads; this module is the one place where those callbacks
are handed to the asyncio loop (``bridge``, built on ``loop.call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from gpiozero import LED, Buzzer, DigitalInputDevice, OutputDevice

log = logging.getLogger(__name__)

PinFactory = Any  # gpiozero.Factory; gpiozero ships no type information

BEEP_SECONDS = 0.1
DENIED_SECONDS = 1.0


def mock_factory(closed_switches: Iterable[int] = ()) -> PinFactory:
    """Return gpiozero's MockFactory, for running without GPIO hardware.

    The pins in ``closed_switches`` start as switches closed to ground (a shut door's reed
    switch): a mock input with its pull-up would otherwise read open, and a laptop run would
    show the door open and raise ``held_open`` after every grant.
    """
    from gpiozero.pins.mock import MockFactory, MockPin  # noqa: PLC0415 - only when simulated

    class ClosedSwitchPin(MockPin):  # type: ignore[misc]
        """A mock input wired to a closed switch: the pull-up cannot lift it."""

        def _set_pull(self, value: str) -> None:
            super()._set_pull(value)
            if value == "up":
                self.drive_low()

    factory = MockFactory()
    for pin in closed_switches:
        factory.pin(pin, pin_class=ClosedSwitchPin)
    return factory


def bridge(callback: Callable[[bool], None], value: bool) -> Callable[[], None]:
    """Return a gpiozero callback that runs ``callback(value)`` on the running event loop."""
    loop = asyncio.get_running_loop()

    def on_gpiozero_thread() -> None:
        loop.call_soon_threadsafe(callback, value)

    return on_gpiozero_thread


class DoorRelay:
    """The relay that unlocks a door strike; ``pulse`` unlocks it for a while."""

    def __init__(self, pin: int, *, active_high: bool, pin_factory: PinFactory) -> None:
        self._name = f"relay on GPIO {pin}"
        self._device = OutputDevice(
            pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
        )
        self._relock: asyncio.Task[None] | None = None
        self._held = False

    @property
    def is_unlocked(self) -> bool:
        return bool(self._device.is_active)

    @property
    def is_held(self) -> bool:
        """Whether the door is held unlocked (office hours)."""
        return self._held

    def pulse(self, seconds: float) -> None:
        """Unlock now and relock after ``seconds``; a new grant restarts the time."""
        if self._relock is not None:
            self._relock.cancel()
        self._device.on()
        log.info("%s: unlocked for %.1f s", self._name, seconds)
        self._relock = asyncio.get_running_loop().create_task(self._lock_after(seconds))

    def hold(self, unlocked: bool) -> None:
        """Keep the door unlocked until told otherwise, or end the hold and relock."""
        self._held = unlocked
        if unlocked:
            self._device.on()
        elif self._relock is None or self._relock.done():
            self._device.off()  # a grant still running relocks by itself

    def lock(self) -> None:
        """Relock now, whatever time was left, hold or not (a lockdown)."""
        if self._relock is not None:
            self._relock.cancel()
            self._relock = None
        self._held = False
        self._device.off()

    async def _lock_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if not self._held:
            self._device.off()
            log.info("%s: locked", self._name)

    def close(self) -> None:
        if self._relock is not None:
            self._relock.cancel()
        with contextlib.suppress(Exception):
            self._device.off()
        self._device.close()


class Contact:
    """A switch to ground (a reed switch, a pressure mat) reported as closed/open in asyncio.

    ``on_change(closed)`` runs on the event loop, never on gpiozero's thread. It is a
    ``DigitalInputDevice`` rather than a ``Button``: a Button's hold thread makes ``close()``
    wait up to its hold time (1 s) while pressed, and a shut door's reed switch is pressed.
    """

    def __init__(
        self,
        pin: int,
        *,
        on_change: Callable[[bool], None],
        pin_factory: PinFactory,
        bounce_seconds: float | None = 0.05,
    ) -> None:
        self._switch = DigitalInputDevice(
            pin, pull_up=True, bounce_time=bounce_seconds or None, pin_factory=pin_factory
        )
        self._switch.when_activated = bridge(on_change, True)
        self._switch.when_deactivated = bridge(on_change, False)

    @property
    def is_closed(self) -> bool:
        return bool(self._switch.is_active)

    def close(self) -> None:
        self._switch.close()


class Indicator:
    """A door's green and red LEDs and its buzzer; any of them may be absent.

    The patterns run on gpiozero's background blink threads, so no call blocks the loop;
    a new pattern replaces the one still showing.
    """

    def __init__(
        self,
        green_pin: int | None,
        red_pin: int | None,
        buzzer_pin: int | None,
        *,
        pin_factory: PinFactory,
        beep_seconds: float = BEEP_SECONDS,
        denied_seconds: float = DENIED_SECONDS,
    ) -> None:
        self._beep_seconds = beep_seconds
        self._denied_seconds = denied_seconds
        self._green = None if green_pin is None else LED(green_pin, pin_factory=pin_factory)
        self._red = None if red_pin is None else LED(red_pin, pin_factory=pin_factory)
        self._buzzer = None if buzzer_pin is None else Buzzer(buzzer_pin, pin_factory=pin_factory)

    def granted(self, seconds: float) -> None:
        """Light green for the unlock time and beep once."""
        self._show(lit=self._green, dark=self._red, seconds=seconds, beeps=1)

    def denied(self) -> None:
        """Light red for a moment and beep three times."""
        self._show(lit=self._red, dark=self._green, seconds=self._denied_seconds, beeps=3)

    def _show(self, *, lit: Any, dark: Any, seconds: float, beeps: int) -> None:
        if dark is not None:
            dark.off()
        if lit is not None:
            lit.blink(on_time=seconds, off_time=0, n=1, background=True)
        if self._buzzer is not None:
            self._buzzer.beep(
                on_time=self._beep_seconds, off_time=self._beep_seconds, n=beeps, background=True
            )

    def close(self) -> None:
        for device in (self._green, self._red, self._buzzer):
            if device is not None:
                with contextlib.suppress(Exception):
                    device.off()
                device.close()
