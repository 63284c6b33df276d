"""Badge readers: each yields the UIDs of cards presented to it, as uppercase hex."""

from __future__ import annotations

import asyncio
from typing import Protocol


class Reader(Protocol):
    """A source of badge taps."""

    async def read(self) -> str:
        """Wait for the next card and return its UID."""
        ...


class SimulatedReader:
    """A reader you can ``present(uid)`` a card to: for the demo and for tests."""

    def __init__(self) -> None:
        self._cards: asyncio.Queue[str] = asyncio.Queue()

    def present(self, uid: str) -> None:
        """Hold a card with ``uid`` against the reader."""
        self._cards.put_nowait(uid.upper())

    async def read(self) -> str:
        return await self._cards.get()
