"""uvicorn, serving the gateway's API, that stops promptly even with live pages open."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import uvicorn

from gateway.service import Gateway


class ApiServer(uvicorn.Server):
    """uvicorn that ends the live pages' event streams as it stops.

    uvicorn waits for open responses before it stops, and an event stream never ends by
    itself: without this, every open live page would hold a stop for the whole graceful
    timeout and then be cut off with an error in the log.
    """

    def __init__(self, config: uvicorn.Config, gateway: Gateway, *, own_signals: bool) -> None:
        super().__init__(config)
        self._gateway = gateway
        self._own_signals = own_signals

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._gateway.live.close()
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if self._own_signals:
            with super().capture_signals():
                yield
        else:  # the program around us owns Ctrl-C and SIGTERM (the demo does)
            yield
