"""The load: members tapping at every door and sitting down and getting up at every desk.

Taps are typed at a steady pace at each door's reader, round the space's badges (grants and
refusals in turn), as long as fewer than ``backlog`` wait at that door: people do not queue
forever at a door that answers slowly. Desks change one at a time, round the desks. A device
in ``paused`` is left alone (the scenario drives it itself, or it is dead).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

from tests.faults.ledger import Ledger
from tests.faults.processes import EdgeProcess

TAP_EVERY = 0.25  # seconds between taps at one door
DESK_EVERY = 0.1  # seconds between desk changes, over all desks
BACKLOG = 10  # taps typed and not yet decided, at most, at one door


class Load:
    """Drive the edges' readers and mats; ``async with load.running():`` to run it."""

    def __init__(
        self,
        edges: dict[str, EdgeProcess],
        ledger: Ledger,
        typed: Counter[str],
        badges: tuple[str, ...],
    ) -> None:
        self._edges = edges
        self._ledger = ledger
        self.typed = typed
        self._badges = badges
        self.paused: set[str] = set()
        self.desk_changes: Counter[str] = Counter()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Load]:
        async with asyncio.TaskGroup() as tasks:
            runs = [
                tasks.create_task(self._door(edge, door, offset))
                for offset, edge in enumerate(self._edges.values())
                for door in edge.readers
            ]
            runs.append(tasks.create_task(self._desks()))
            try:
                yield self
            finally:
                for run in runs:
                    run.cancel()

    def tap(self, door: str, uid: str | None = None) -> None:
        """Type one badge at ``door``'s reader (the next one round the badges if not named)."""
        edge = next(edge for edge in self._edges.values() if door in edge.readers)
        edge.tap(door, uid or self._badges[self.typed[door] % len(self._badges)])
        self.typed[door] += 1

    async def taps(self, door: str, count: int, seconds: float) -> None:
        """Type ``count`` taps at ``door``, evenly over ``seconds``, whatever the door does."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n in range(count):
            await asyncio.sleep(max(start + n * seconds / count - loop.time(), 0))
            self.tap(door)

    def decided(self, door: str) -> bool:
        """Whether every tap typed at ``door`` has been decided."""
        self._ledger.refresh()
        return self._ledger.decided[door] >= self.typed[door]

    async def _door(self, edge: EdgeProcess, door: str, offset: int) -> None:
        self.typed[door] += 0
        while True:
            await asyncio.sleep(TAP_EVERY)
            if edge.device in self.paused or not edge.alive:
                continue
            self._ledger.refresh()
            if self.typed[door] - self._ledger.decided[door] < BACKLOG:
                self.tap(door, self._badges[(self.typed[door] + offset) % len(self._badges)])

    async def _desks(self) -> None:
        desks = [(edge, desk) for edge in self._edges.values() for desk in edge.pins]
        n = 0
        while True:
            await asyncio.sleep(DESK_EVERY)
            edge, desk = desks[n % len(desks)]
            n += 1
            if edge.device in self.paused or not edge.alive:
                continue
            if edge.set_desk(desk, not edge.occupied[desk]):
                self.desk_changes[desk] += 1
