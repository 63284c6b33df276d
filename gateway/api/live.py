"""The live page and its API: no token needed, and nothing private in it.

Desks, rooms, doors and offline devices are shown to anyone in the space; members appear only
if they opted in to the board, and only with what they chose to share.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from gateway.api.deps import GatewayDep

WEB = Path(__file__).resolve().parents[1] / "web"
PING_SECONDS = 15.0

router = APIRouter(tags=["live page"])
static = StaticFiles(directory=WEB, check_dir=False)


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse("/live")


@router.get("/live", include_in_schema=False)
def page() -> FileResponse:
    """Serve the live page."""
    return FileResponse(
        WEB / "live.html",
        media_type="text/html",
        # The page runs no inline code and loads nothing from elsewhere: say so to the browser.
        headers={"Content-Security-Policy": "default-src 'self'; img-src 'self' data:"},
    )


@router.get("/live/state")
def live_state(gateway: GatewayDep) -> Response:
    """Desks and rooms by area, doors, offline devices, and how many members are in."""
    return Response(gateway.live.state_json, media_type="application/json")


@router.get("/live/board")
def live_board(
    gateway: GatewayDep,
    skill: Annotated[str | None, Query(max_length=80, description="Filter by a skill")] = None,
) -> dict[str, Any]:
    """Who is in today, among the members who opted in; searchable by skill."""
    with gateway.store.session() as session:
        return gateway.live.board(session, skill)


@router.get("/live/events")
async def live_events(request: Request, gateway: GatewayDep) -> StreamingResponse:
    """Server-sent events: a ``state`` and a ``board`` snapshot now and after every change."""
    queue = gateway.live.subscribe()

    async def stream() -> AsyncIterator[str]:
        try:
            while not await request.is_disconnected():
                try:
                    event = await asyncio.wait_for(queue.get(), PING_SECONDS)
                except TimeoutError:
                    yield ": ping\n\n"  # keeps proxies from closing an idle stream
                    continue
                if event is None:  # the gateway is stopping
                    return
                yield event
        finally:
            gateway.live.unsubscribe(queue)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
