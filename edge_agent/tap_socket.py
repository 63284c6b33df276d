"""Taps without hardware: ``varco edge tap CARD`` hands a card to a running agent.

The agent listens on a Unix socket in its state folder (``tap.sock``, mode 0660: the agent's
user and group; the folder is 0750) when one of its doors has a simulated reader, and only
then: a door with a real reader takes cards from that reader alone. One request a connection,
one line: ``<door> <card>`` (``-`` for the door when only one has a simulated reader). The card
is read as a USB reader's line is (``readers.uid_from_line``: hex, 10 decimal digits, or a pass's
``varco-pass:`` text). The answer is one line, what the door did: ``front-door: 04A22B1A granted
(granted)``, ``..., decided offline`` when the gateway did not answer in time, or
``refused: <why>`` (logged and counted in ``refused``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from edge_agent.door import Door, Outcome
from edge_agent.readers import SimulatedReader, uid_from_line

log = logging.getLogger(__name__)

SOCKET_NAME = "tap.sock"
_MAX_REQUEST = 256  # bytes: a door id and a card fit in far less
_READ_SECONDS = 5.0
_EXTRA_SECONDS = 5.0  # beyond the door's decision timeout, for the outcome to come back


class Refused(Exception):  # noqa: N818 - a refusal, not an error of the agent
    """A request the socket answers with ``refused: <why>``."""


class TapSocket:
    """The agent's end: ``async with TapSocket(path, doors):`` serves until the block ends."""

    def __init__(self, path: Path, doors: Mapping[str, Door]) -> None:
        self.path = path
        self.refused = 0
        self._doors = {
            door_id: door
            for door_id, door in doors.items()
            if isinstance(door.reader, SimulatedReader)
        }
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> TapSocket:
        # A socket left by an agent that was killed would refuse the bind.
        self.path.unlink(missing_ok=True)
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=self.path, limit=_MAX_REQUEST
            )
            os.chmod(self.path, 0o660)
        except OSError as exc:
            # A convenience for makers: the doors work without it.
            log.warning("cannot listen for taps on %s: %s", self.path, exc)
        else:
            log.info("taps for %s: varco edge tap CARD (%s)", ", ".join(self._doors), self.path)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self.path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                line = await asyncio.wait_for(reader.readline(), _READ_SECONDS)
                answer = await self._answer(line)
            except (ValueError, asyncio.LimitOverrunError):
                answer = self._refuse(f"a request longer than {_MAX_REQUEST} bytes")
            except TimeoutError:
                answer = self._refuse("no request, or no outcome, in time")
            except Refused as refusal:
                answer = self._refuse(str(refusal))
            writer.write(answer.encode() + b"\n")
            await writer.drain()
        except ConnectionError:
            pass  # the asker left: nobody to answer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, line: bytes) -> str:
        try:
            name, _, card = line.decode("ascii").strip().partition(" ")
        except UnicodeDecodeError:
            raise Refused("not ASCII") from None
        if not card:
            raise Refused("expected one line: <door> <card>")
        door = self._door(name)
        try:
            uid = uid_from_line(card)
        except ValueError as exc:
            raise Refused(f"not a card: {exc}") from None
        outcome: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

        def on_outcome(result: Outcome) -> None:
            if result.uid == uid and not outcome.done():
                outcome.set_result(result)

        door.outcomes.append(on_outcome)
        try:
            assert isinstance(door.reader, SimulatedReader)
            if not door.reader.present(uid):
                raise Refused(
                    f"the same card again within the reader's hold-off "
                    f"({door.config.reader.hold_off_seconds:g} s)"
                )
            timeout = door.config.decision_timeout_seconds + _EXTRA_SECONDS
            done = await asyncio.wait_for(outcome, timeout)
        finally:
            door.outcomes.remove(on_outcome)
        verdict = "granted" if done.granted else "denied"
        offline = "" if done.answered else ", decided offline"
        return f"{done.door}: {done.uid} {verdict} ({done.reason}){offline}"

    def _door(self, name: str) -> Door:
        if name == "-" and len(self._doors) == 1:
            return next(iter(self._doors.values()))
        door = self._doors.get(name)
        if door is None:
            raise Refused(
                f"no door {name!r} with a simulated reader here; "
                f"name one of: {', '.join(sorted(self._doors))}"
            )
        return door

    def _refuse(self, reason: str) -> str:
        self.refused += 1
        log.warning("tap socket: refused a request (%s)", reason)
        return f"refused: {reason}"


class NoAgentError(OSError):
    """No agent listens on the socket; the message says how to start one."""


def send_tap(path: Path, card: str, *, door: str | None = None, timeout: float = 20.0) -> str:
    """Hand ``card`` to the agent listening on ``path``; return its one-line answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(timeout)
        try:
            client.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise NoAgentError(f"no agent listens on {path}") from exc
        client.sendall(f"{door or '-'} {card}\n".encode())
        answer = b""
        while chunk := client.recv(1024):
            answer += chunk
    return answer.decode(errors="replace").strip()
