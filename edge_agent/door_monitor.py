"""A door's alarm logic: which openings were authorised, and which stayed open too long.

The monitor touches no pin. The agent feeds it unlock windows (``authorise``, from a grant or
the request-to-exit button) and reed-switch changes (``contact``); it answers with door states
through ``on_state``, on the event loop, timed with ``loop.call_later``.

The rules:

- every change of the contact is reported: ``OPENED`` or ``CLOSED``;
- an opening outside every unlock window is ``FORCED_OPEN`` (right after ``OPENED``);
- an opening inside a window starts the held-open clock; if the door is still open after
  ``held_open_seconds`` it is ``HELD_OPEN``; closing the door stops the clock;
- an unlock window lasts as long as the relay is unlocked, so opening the door twice within
  one window is two authorised openings;
- an opening raises at most one alarm, forced or held;
- a grant that arrives while the door is already open does not make it forced (it is open
  already) and, if this opening has raised no alarm yet, (re)starts the held-open clock from the
  grant: someone let in through an open door has ``held_open_seconds`` to shut it. An opening
  that has already raised its alarm stays as it is until the door closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from varco.protocol import DoorState


class DoorMonitor:
    """Turn unlock windows and reed-switch changes into door states and alarms."""

    def __init__(
        self,
        held_open_seconds: float,
        on_state: Callable[[DoorState], None],
        *,
        closed: bool = True,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._held_open_seconds = held_open_seconds
        self._on_state = on_state
        self._closed = closed
        self._unlocked_until = float("-inf")
        self._alarmed = False  # this opening has raised its alarm
        self._held_open: asyncio.TimerHandle | None = None

    @property
    def is_closed(self) -> bool:
        return self._closed

    def authorise(self, seconds: float) -> None:
        """Open an unlock window of ``seconds`` from now (a grant or a request to exit)."""
        self._unlocked_until = max(self._unlocked_until, self._loop.time() + seconds)
        if not self._closed and not self._alarmed:
            self._start_held_open_clock()

    def contact(self, closed: bool) -> None:
        """Take a change of the door's reed switch; a repeat of the known state is ignored."""
        if closed == self._closed:
            return
        self._closed = closed
        if closed:
            self._stop_held_open_clock()
            self._alarmed = False
            self._on_state(DoorState.CLOSED)
            return
        self._on_state(DoorState.OPENED)
        if self._loop.time() < self._unlocked_until:
            self._start_held_open_clock()
        else:
            self._alarmed = True
            self._on_state(DoorState.FORCED_OPEN)

    def close(self) -> None:
        self._stop_held_open_clock()

    def _start_held_open_clock(self) -> None:
        self._stop_held_open_clock()
        self._held_open = self._loop.call_later(self._held_open_seconds, self._held_too_long)

    def _stop_held_open_clock(self) -> None:
        if self._held_open is not None:
            self._held_open.cancel()
            self._held_open = None

    def _held_too_long(self) -> None:
        self._held_open = None
        self._alarmed = True
        self._on_state(DoorState.HELD_OPEN)
