"""The demo's live summary in the terminal: each tap as it is decided, and a tally."""

from __future__ import annotations

import sys
from collections import Counter
from datetime import datetime
from typing import TextIO

from edge_agent.door import Outcome
from gateway.occupancy import Occupancy
from varco.demo.space import CARDS, DESKS
from varco.protocol import DoorEvent, DoorState, Payload, Topic

ALARMS = frozenset({DoorState.FORCED_OPEN, DoorState.HELD_OPEN, DoorState.TAMPER})


class Summary:
    """Counts outcomes at the doors and prints them as they happen."""

    def __init__(self, occupancy: Occupancy, out: TextIO = sys.stdout) -> None:
        self._occupancy = occupancy
        self._out = out
        self._holders = {card.uid: card.holder for card in CARDS}
        self.granted = 0
        self.denied: Counter[str] = Counter()

    def on_outcome(self, outcome: Outcome) -> None:
        holder = self._holders.get(outcome.uid, f"card {outcome.uid}")
        if outcome.granted:
            self.granted += 1
            verdict = "granted"
        else:
            self.denied[outcome.reason] += 1
            verdict = f"denied ({outcome.reason})"
        self._print(f"{_clock()}  {outcome.door:<12} {holder:<24} {verdict}")

    def on_message(self, topic: Topic, payload: Payload) -> None:
        """Show door alarms as the gateway receives them."""
        if isinstance(payload, DoorEvent) and payload.state in ALARMS:
            self._print(f"{_clock()}  {payload.door:<12} ALARM: {payload.state.value}")

    def tally(self) -> str:
        denied = sum(self.denied.values())
        reasons = ", ".join(f"{reason} {n}" for reason, n in self.denied.most_common())
        doors = (
            ", ".join(
                f"{door} {state}" for door, (state, _) in sorted(self._occupancy.doors.items())
            )
            or "no door events yet"
        )
        taken = sum(1 for d in DESKS if (s := self._occupancy.desks.get(d)) and s.occupied)
        return (
            f"-- {_clock()}  taps {self.granted + denied}: granted {self.granted}, "
            f"denied {denied}{f' ({reasons})' if reasons else ''} | doors: {doors} | "
            f"desks occupied: {taken}/{len(DESKS)}"
        )

    def print_tally(self) -> None:
        self._print(self.tally())

    def _print(self, line: str) -> None:
        print(line, file=self._out, flush=True)


def _clock() -> str:
    return datetime.now().strftime("%H:%M:%S")
