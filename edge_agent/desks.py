"""Desk occupancy sensors: a pressure mat, a PIR motion sensor or an HC-SR04 ultrasonic sensor.

Each sensor calls ``on_change(occupied)`` on the event loop, and only when the desk really
changed between free and occupied. gpiozero's callbacks reach the loop through
``hardware.bridge``; the timing rules (settle, hold, consecutive samples) run on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import warnings
from collections.abc import Callable
from typing import Protocol, assert_never

from gpiozero import DistanceSensor, MotionSensor, PWMSoftwareFallback

from edge_agent.config import (
    DeskConfig,
    PirDeskConfig,
    PressureMatDeskConfig,
    UltrasonicDeskConfig,
)
from edge_agent.hardware import Contact, PinFactory, bridge

log = logging.getLogger(__name__)

# The HC-SR04's rated range; gpiozero reports anything farther as this distance.
ULTRASONIC_MAX_DISTANCE_M = 4.0


class DeskSensor(Protocol):
    """Whether a desk is occupied, from one sensor."""

    @property
    def occupied(self) -> bool: ...

    def close(self) -> None: ...


def open_desk_sensor(
    config: DeskConfig, *, pin_factory: PinFactory, on_change: Callable[[bool], None]
) -> DeskSensor:
    """Open the sensor a desk's configuration names; call from the event loop."""
    if isinstance(config, PressureMatDeskConfig):
        return PressureMat(config, pin_factory=pin_factory, on_change=on_change)
    if isinstance(config, PirDeskConfig):
        return PirSensor(config, pin_factory=pin_factory, on_change=on_change)
    if isinstance(config, UltrasonicDeskConfig):
        return UltrasonicSensor(config, pin_factory=pin_factory, on_change=on_change)
    assert_never(config)


class PressureMat:
    """A mat that closes a switch to ground while someone sits on it.

    A press or a release counts once it has lasted ``settle_seconds`` (at once when 0): someone
    shifting in the chair is not a desk changing hands. The desk starts as the mat is found.
    """

    def __init__(
        self,
        config: PressureMatDeskConfig,
        *,
        pin_factory: PinFactory,
        on_change: Callable[[bool], None],
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._settle_seconds = config.settle_seconds
        self._on_change = on_change
        self._settling: asyncio.TimerHandle | None = None
        self._contact = Contact(
            config.pin,
            on_change=self._pressed,
            pin_factory=pin_factory,
            bounce_seconds=config.bounce_seconds,
        )
        self._occupied = self._contact.is_closed

    @property
    def occupied(self) -> bool:
        return self._occupied

    def _pressed(self, pressed: bool) -> None:
        if self._settling is not None:
            self._settling.cancel()
            self._settling = None
        if pressed == self._occupied:
            return  # back to the known state before it settled
        if self._settle_seconds == 0:
            self._settle(pressed)
        else:
            self._settling = self._loop.call_later(self._settle_seconds, self._settle, pressed)

    def _settle(self, occupied: bool) -> None:
        self._settling = None
        if occupied != self._occupied:
            self._occupied = occupied
            self._on_change(occupied)

    def close(self) -> None:
        if self._settling is not None:
            self._settling.cancel()
        self._contact.close()


class PirSensor:
    """A PIR motion sensor over the desk.

    Motion makes the desk occupied at once; it stays occupied until the sensor has seen no
    motion for ``hold_seconds``, and new motion restarts that wait. gpiozero polls the sensor
    ten times a second. Opening it waits for that first sample (up to 0.1 s) so the desk starts
    as it is, since gpiozero does not report the first state as a change.
    """

    def __init__(
        self,
        config: PirDeskConfig,
        *,
        pin_factory: PinFactory,
        on_change: Callable[[bool], None],
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._hold_seconds = config.hold_seconds
        self._on_change = on_change
        self._holding: asyncio.TimerHandle | None = None
        self._sensor = MotionSensor(config.pin, pin_factory=pin_factory)
        self._sensor.when_motion = bridge(self._motion, True)
        self._sensor.when_no_motion = bridge(self._motion, False)
        self._occupied = bool(self._sensor.motion_detected)

    @property
    def occupied(self) -> bool:
        return self._occupied

    def _motion(self, moving: bool) -> None:
        self._stop_holding()
        if moving:
            self._set(True)
        else:
            self._holding = self._loop.call_later(self._hold_seconds, self._set, False)

    def _set(self, occupied: bool) -> None:
        if occupied != self._occupied:
            self._occupied = occupied
            self._on_change(occupied)

    def _stop_holding(self) -> None:
        if self._holding is not None:
            self._holding.cancel()
            self._holding = None

    def close(self) -> None:
        self._stop_holding()
        self._sensor.close()


class UltrasonicSensor:
    """An HC-SR04 facing the chair: occupied when something is nearer than ``threshold_m``.

    The desk becomes occupied after ``samples`` consecutive readings nearer than the threshold
    and free after ``samples`` consecutive readings at or beyond it; it starts free. gpiozero's
    ``DistanceSensor`` pings in its own thread (about every 60 ms, no smoothing of its own:
    the consecutive readings are the smoothing); a daemon thread of ours reads its ``distance``
    every ``sample_seconds`` and hands each reading to the loop. The read happens off the loop
    because it blocks until the sensor's first echo, forever if the sensor never answers; a
    daemon thread, unlike ``asyncio.to_thread``'s pool, cannot hold up the process's exit then.

    Tests drive the real ``DistanceSensor`` through gpiozero's own seam: a ``MockTriggerPin``
    on the trigger, whose ``echo_time`` sets the distance the echo pin reports.
    """

    def __init__(
        self,
        config: UltrasonicDeskConfig,
        *,
        pin_factory: PinFactory,
        on_change: Callable[[bool], None],
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._threshold_m = config.threshold_m
        self._samples = config.samples
        self._sample_seconds = config.sample_seconds
        self._on_change = on_change
        self._occupied = False
        self._streak = 0  # consecutive readings on the other side of the threshold
        self._stopping = threading.Event()
        with warnings.catch_warnings():
            # Advice to use pigpio, which the Pi 5 lacks; the consecutive readings absorb the
            # timing jitter of the other pin factories.
            warnings.simplefilter("ignore", PWMSoftwareFallback)
            self._sensor = DistanceSensor(
                echo=config.echo_pin,
                trigger=config.trigger_pin,
                queue_len=1,
                max_distance=ULTRASONIC_MAX_DISTANCE_M,
                pin_factory=pin_factory,
            )
        self._sampler = threading.Thread(
            target=self._sample, name=f"ultrasonic-{config.id}", daemon=True
        )
        self._sampler.start()

    @property
    def occupied(self) -> bool:
        return self._occupied

    def _sample(self) -> None:
        """Read the distance every ``sample_seconds`` until closed (on the sampler thread)."""
        while not self._stopping.wait(self._sample_seconds):
            try:
                distance = float(self._sensor.distance)
            except Exception:
                if not self._stopping.is_set():
                    log.exception("ultrasonic sensor stopped answering")
                return
            if self._stopping.is_set():
                return
            # The loop may close between the check and the call when the agent stops.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._reading, distance)

    def _reading(self, distance: float) -> None:
        if self._stopping.is_set():
            return
        near = distance < self._threshold_m
        if near == self._occupied:
            self._streak = 0
            return
        self._streak += 1
        if self._streak >= self._samples:
            self._streak = 0
            self._occupied = near
            self._on_change(near)

    def close(self) -> None:
        self._stopping.set()
        self._sensor.close()
