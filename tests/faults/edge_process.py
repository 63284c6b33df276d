"""``varco edge`` as the fault suite runs it: the real command, its pins driven, its word kept.

    python -m tests.faults.edge_process LEDGER STATUS edge --config FILE

This is the one hook the suite adds to an edge process, and it changes nothing the agent does.
``varco.cli.main`` runs as it does on a Pi (configuration file, serial readers on a pty the test
writes to, the outbox, the link); before it starts, ``edge_agent.agent.Agent`` is replaced by a
subclass that only watches:

- each tap the doors ask about (``Link.ask``) and each desk event (``Link.send``) is appended to
  LEDGER as the edge made it (event id, door or desk, its own time): the events the process
  sent, which the suite then looks for in SQL and InfluxDB;
- each door's decision (``Door.outcomes``) is appended with the relay pin's state at that moment
  and how long the door waited: what the door did, to compare with what the gateway recorded;
- STATUS is rewritten every 0.1 s with the outbox depth and whether the link is up;
- stdin takes ``<pin> high|low`` lines, applied to gpiozero's MockFactory pins on the event
  loop: the desks' pressure mats, driven below the driver library as on the bench.

A ledger line is written with one ``os.write`` on an ``O_APPEND`` file: a SIGKILL cannot tear it
or lose it (the kernel has it), so the ledger holds everything the process did before it died.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import edge_agent.agent
from edge_agent.agent import Agent, Outcome
from varco import cli
from varco.protocol import DeskEvent, Tap

_STATUS_EVERY = 0.1


class _Book:
    """The ledger file, one JSON object a line."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, **entry: Any) -> None:
        os.write(self._fd, (json.dumps(entry, default=str) + "\n").encode())


def recorded_agent(book: _Book, status: Path) -> type[Agent]:
    """Return an ``Agent`` that writes what it does to ``book`` and its health to ``status``."""

    class RecordedAgent(Agent):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._asked: dict[str, float] = {}
            link = self.link
            ask, send = link.ask, link.send

            async def asked(tap: Tap, *rest: Any, **named: Any) -> Any:
                self._asked[tap.event_id] = time.monotonic()
                book.write(
                    kind="tap",
                    event_id=tap.event_id,
                    door=tap.door,
                    uid=tap.credential.value,
                    at=tap.at.isoformat(),
                )
                return await ask(tap, *rest, **named)

            def sent(channel: Any, payload: Any, *rest: Any, **named: Any) -> Any:
                result = send(channel, payload, *rest, **named)
                if isinstance(payload, DeskEvent):
                    book.write(
                        kind="desk",
                        event_id=payload.event_id,
                        desk=payload.desk,
                        occupied=payload.occupied,
                        at=payload.at.isoformat(),
                    )
                return result

            link.ask = asked  # type: ignore[method-assign]
            link.send = sent  # type: ignore[method-assign]

        async def run(self, ready: asyncio.Event | None = None) -> None:
            started = asyncio.Event()
            watching = asyncio.create_task(self._watch(started, ready))
            try:
                await super().run(started)
            finally:
                watching.cancel()

        async def _watch(self, started: asyncio.Event, ready: asyncio.Event | None) -> None:
            await started.wait()
            for door in self.doors.values():
                door.outcomes.append(self._decided(door.config.relay_pin))
            loop = asyncio.get_running_loop()
            threading.Thread(target=self._pins, args=(loop,), daemon=True).start()
            book.write(kind="start", device=self.config.device_id, pid=os.getpid())
            if ready is not None:
                ready.set()
            while True:
                allowlist = self.cache.current
                state = {
                    "depth": self.outbox.depth,
                    "connected": self.link.connected.is_set(),
                    "allowlist": allowlist.version if allowlist else None,
                }
                scratch = status.with_suffix(".tmp")
                scratch.write_text(json.dumps(state))
                scratch.replace(status)
                await asyncio.sleep(_STATUS_EVERY)

        def _decided(self, relay_pin: int) -> Callable[[Outcome], None]:
            def decided(outcome: Outcome) -> None:
                asked = self._asked.pop(outcome.event_id, None)
                book.write(
                    kind="outcome",
                    event_id=outcome.event_id,
                    door=outcome.door,
                    granted=outcome.granted,
                    reason=outcome.reason,
                    answered=outcome.answered,
                    relay=bool(self.pin_factory.pin(relay_pin).state),
                    waited=None if asked is None else time.monotonic() - asked,
                )

            return decided

        def _pins(self, loop: asyncio.AbstractEventLoop) -> None:
            # gpiozero runs on the agent's loop; a drive from the test is handed over to it.
            for line in sys.stdin:
                pin, level = line.split()
                drive = self.pin_factory.pin(int(pin))
                loop.call_soon_threadsafe(drive.drive_high if level == "high" else drive.drive_low)

    return RecordedAgent


def main(argv: list[str]) -> int:
    ledger, status, *command = argv
    edge_agent.agent.Agent = recorded_agent(_Book(Path(ledger)), Path(status))  # type: ignore[misc]
    return cli.main(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
