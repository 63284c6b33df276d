"""Door and desk hardware through gpiozero, with the pin factory passed in from the agent.

gpiozero calls back on its own threads; this module is the one place where those callbacks
are handed to the asyncio loop (``loop.call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from gpiozero import Button, OutputDevice

PinFactory = Any  # gpiozero.Factory; gpiozero ships no type information


def mock_factory() -> PinFactory:
    """Return gpiozero's MockFactory, for running without GPIO hardware."""
    from gpiozero.pins.mock import MockFactory  # noqa: PLC0415 - only when simulated

    return MockFactory()


class DoorRelay:
    """The relay that unlocks a door strike; ``pulse`` unlocks it for a while."""

    def __init__(self, pin: int, *, active_high: bool, pin_factory: PinFactory) -> None:
        self._device = OutputDevice(
            pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
        )
        self._relock: asyncio.Task[None] | None = None

    @property
    def is_unlocked(self) -> bool:
        return bool(self._device.is_active)

    def pulse(self, seconds: float) -> None:
        """Unlock now and relock after ``seconds``; a new grant restarts the time."""
        if self._relock is not None:
            self._relock.cancel()
        self._device.on()
        self._relock = asyncio.get_running_loop().create_task(self._lock_after(seconds))

    async def _lock_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._device.off()

    def close(self) -> None:
        if self._relock is not None:
            self._relock.cancel()
        with contextlib.suppress(Exception):
            self._device.off()
        self._device.close()


class Contact:
    """A switch to ground (a reed switch, a pressure mat) reported as closed/open in asyncio.

    ``on_change(closed)`` runs on the event loop, never on gpiozero's thread.
    """

    def __init__(
        self,
        pin: int,
        *,
        on_change: Callable[[bool], None],
        pin_factory: PinFactory,
        bounce_seconds: float | None = 0.05,
    ) -> None:
        loop = asyncio.get_running_loop()
        self._button = Button(
            pin, pull_up=True, bounce_time=bounce_seconds or None, pin_factory=pin_factory
        )
        self._button.when_pressed = lambda: loop.call_soon_threadsafe(on_change, True)
        self._button.when_released = lambda: loop.call_soon_threadsafe(on_change, False)

    @property
    def is_closed(self) -> bool:
        return bool(self._button.is_pressed)

    def close(self) -> None:
        self._button.close()
