"""A TCP relay between one edge and the broker: the network the test can cut or make half-open.

Each edge connects to the broker through its own ``LinkProxy``. ``up`` relays bytes both
ways; ``down`` resets every connection and refuses new ones (a cable pulled, a switch
rebooting: the edge sees it at once); ``half_open`` keeps every connection open and relays
nothing, either way, and new connections are taken and never answered (a NAT that forgot the
flow, a Wi-Fi link gone deaf: nobody is told). Back ``up``, the connections that went deaf are
reset, as the far end would do on the next packet, and new ones relay again.

While the broker is down (``broker_gone``, until ``broker_back``), the relay refuses
connections as the broker's own closed port would: a relay that took them and then hung up
would make every client wait for its CONNACK until its own timeout, a delay the edge never
sees when it reaches the broker itself.

The relay runs its own event loop on a thread, so that the test's blocking calls (SQL, a
process to wait for) never hold the edge's bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Literal

from tests.conftest import free_port

Mode = Literal["up", "down", "half_open"]
_CHUNK = 65536


class _Pair:
    """One edge connection and its connection to the broker."""

    def __init__(self, edge: asyncio.StreamWriter) -> None:
        self.edge = edge
        self.broker: asyncio.StreamWriter | None = None
        self.deaf = False

    def close(self) -> None:
        for writer in (self.edge, self.broker):
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.transport.abort()  # a reset, not a polite FIN after the buffers


class LinkProxy:
    """Listen on ``port`` and relay to the broker at ``broker_port``; a context manager."""

    def __init__(self, broker_port: int) -> None:
        self.port = free_port()
        self.broker_port = broker_port
        self.mode: Mode = "up"
        self.broker_up = True
        self._pairs: set[_Pair] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def __enter__(self) -> LinkProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=5)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def set(self, mode: Mode) -> None:
        """Switch the link to ``mode``; returns once connections are reset or marked deaf."""
        asyncio.run_coroutine_threadsafe(self._set(mode), self._loop).result(timeout=5)

    def broker_gone(self) -> None:
        """Refuse connections, as the broker's port does while it is down."""
        self.broker_up = False
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=5)

    def broker_back(self) -> None:
        """Take connections again."""
        self.broker_up = True
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=5)

    async def _set(self, mode: Mode) -> None:
        self.mode = mode
        for pair in list(self._pairs):
            if mode == "down" or (mode == "up" and pair.deaf):
                pair.close()
                self._pairs.discard(pair)
            elif mode == "half_open":
                pair.deaf = True
        await self._listen()

    async def _listen(self) -> None:
        """Listen while connections may be taken; otherwise let the port refuse them."""
        listening = self.mode != "down" and self.broker_up
        if listening and self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        elif not listening and self._server is not None:
            self._server.close()
            self._server = None

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for pair in list(self._pairs):
            pair.close()
        self._pairs.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pair = _Pair(writer)
        if self.mode == "down" or not self.broker_up:  # taken just before the port closed
            pair.close()
            return
        self._pairs.add(pair)
        pair.deaf = self.mode == "half_open"
        try:
            if not pair.deaf:
                upstream, pair.broker = await asyncio.open_connection("127.0.0.1", self.broker_port)
                await asyncio.gather(
                    self._pump(reader, pair.broker, pair), self._pump(upstream, writer, pair)
                )
            else:
                await self._pump(reader, None, pair)  # taken, never answered
        except OSError:
            pass
        finally:
            pair.close()
            self._pairs.discard(pair)

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter | None, pair: _Pair
    ) -> None:
        while data := await source.read(_CHUNK):
            if pair.deaf or sink is None:
                continue  # the bytes go nowhere, and nobody says so
            sink.write(data)
            await sink.drain()
        if not pair.deaf:
            pair.close()  # one side closed: so does the other, as a TCP relay would
        # Deaf, the edge is not told even that: the broker giving up on it reaches nobody.
