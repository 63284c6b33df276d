"""Live state of the space: which desks are taken and what each door last reported."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from varco.protocol import DeskEvent, DoorEvent


@dataclass(slots=True)
class DeskState:
    occupied: bool
    since: datetime


@dataclass(slots=True)
class Occupancy:
    """Kept from desk and door events in the order of their own timestamps."""

    desks: dict[str, DeskState] = field(default_factory=dict)
    doors: dict[str, tuple[str, datetime]] = field(default_factory=dict)

    def apply_desk(self, event: DeskEvent) -> bool:
        """Apply a desk event; return whether it changed the state (late events do not)."""
        current = self.desks.get(event.desk)
        if current is not None and event.at < current.since:
            return False
        changed = current is None or current.occupied != event.occupied
        self.desks[event.desk] = DeskState(event.occupied, event.at)
        return changed

    def apply_door(self, event: DoorEvent) -> None:
        """Apply a door event unless a newer one is already known."""
        current = self.doors.get(event.door)
        if current is None or event.at >= current[1]:
            self.doors[event.door] = (event.state.value, event.at)

    @property
    def occupied_desks(self) -> int:
        return sum(1 for desk in self.desks.values() if desk.occupied)
