"""Fixtures for the live page's tests: the real gateway over HTTP, Debian's Chromium driving it."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
import uvicorn
from playwright.async_api import Browser, ConsoleMessage, Page, Request, Response, async_playwright

from gateway.api import create_app
from gateway.api.server import ApiServer
from gateway.service import Gateway
from gateway.store import Store
from gateway.store.models import Device, DeviceKind
from tests.conftest import Mosquitto, free_port, need
from tests.factories import FRONT_DOOR, SITE, Space, make_space
from tests.integration.conftest import device_client, gateway_settings, next_decision, tap_for
from varco import protocol, transport
from varco.protocol import Channel, Decision, DeskEvent, DeviceState, Payload, Status

CHROMIUM = Path("/usr/bin/chromium")
# What works headless in a container, as root, with no network beyond loopback.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

DESK_NODE = "desk-node-1"
DESK_NODE_NAME = "Open space desks"
# (id, name, area, kind): what the admin registers through POST /desks.
DESKS = [
    ("desk-1", "Desk 1", "lobby", "desk"),
    ("desk-2", "Desk 2", "lobby", "desk"),
    ("desk-3", "Desk 3", "lobby", "desk"),
    ("meeting-room", "Meeting room", "lobby", "room"),
    ("office-desk", "Office desk", "offices", "desk"),
]
# Ada shares a profile; Grace filled one in but did not opt in, so nothing of it may show.
ADA_PROFILE = {
    "opt_in": True,
    "display_name": "Ada",
    "profession": "Mathematician",
    "skills": ["analytical engines", "notation"],
    "ask_me_about": "Bernoulli numbers",
}
GRACE_PROFILE = {
    "opt_in": False,
    "display_name": "Amazing Grace",
    "profession": "Rear admiral",
    "skills": ["COBOL", "nanoseconds"],
    "ask_me_about": "Compilers",
}
# Everything that would identify Grace, or say more of Ada than she chose to share.
NEVER_SHOWN = [
    "Grace",
    "Hopper",
    "Rear admiral",
    "COBOL",
    "nanoseconds",
    "Compilers",
    "Lovelace",
    Space.GRACE_BADGE,
    Space.ADA_BADGE,
]


@dataclass
class LiveGateway:
    """The gateway with its API on a free port, as a browser in the space would reach it."""

    broker: Mosquitto
    database: Path
    space: Space
    port: int = field(default_factory=free_port)
    gateway: Gateway | None = None
    _server: uvicorn.Server | None = None
    _serving: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start a new gateway and its API on the same database, broker and port."""
        self.gateway = Gateway(gateway_settings(self.database, self.broker))
        server = ApiServer(
            uvicorn.Config(
                create_app(self.gateway),
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                # Long, so that a stop held by an open page's stream fails ``stop()``.
                timeout_graceful_shutdown=30,
            ),
            self.gateway,
            own_signals=False,  # pytest owns Ctrl-C
        )
        self._server = server
        self._serving = asyncio.create_task(server.serve())
        async with asyncio.timeout(10):
            while not server.started:
                if self._serving.done():
                    self._serving.result()
                    raise RuntimeError("the API stopped while starting")
                await asyncio.sleep(0.02)
            assert self.gateway.ingest is not None
            await self.gateway.ingest.connected.wait()

    async def stop(self) -> None:
        """Stop the API and the gateway, as a crash or a redeploy would."""
        if self._server is None or self._serving is None:
            return
        self._server.should_exit = True
        async with asyncio.timeout(10):
            await self._serving
        self._server = self._serving = None

    def admin(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.space.admin_token}"},
            timeout=5,
        )

    async def get_text(self, path: str) -> str:
        """GET ``path`` without any token, as the page does; return the body."""
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:
            response = await client.get(path)
        response.raise_for_status()
        return response.text

    async def get_json(self, path: str) -> Any:
        return json.loads(await self.get_text(path))

    async def events_text(self, count: int = 2) -> str:
        """Read the event stream until ``count`` events arrived; return its raw text."""
        text = ""
        async with (
            httpx.AsyncClient(base_url=self.url, timeout=5) as client,
            client.stream("GET", "/live/events") as response,
            asyncio.timeout(5),
        ):
            assert response.headers["content-type"].startswith("text/event-stream")
            async for chunk in response.aiter_text():
                text += chunk
                if text.count("\n\n") >= count:
                    break
        return text

    async def publish(
        self, device: str, channel: Channel, payload: Payload, *, retain: bool = False
    ) -> None:
        """Publish ``payload`` as ``device`` would, and wait until the broker has it."""
        client = transport.client(
            transport.BrokerAddress(port=self.broker.port),
            identifier=f"{device}-test-{uuid.uuid4().hex[:6]}",
        )
        async with client:
            await client.publish(
                protocol.topic(SITE, device, channel),
                protocol.encode(payload),
                qos=1,
                retain=retain,
            )

    async def desk(self, desk: str, *, occupied: bool) -> None:
        """A desk sensor on the desk node reports."""
        event = DeskEvent(
            event_id=uuid.uuid4().hex, desk=desk, occupied=occupied, at=protocol.utcnow()
        )
        await self.publish(DESK_NODE, Channel.DESK, event)

    async def device_status(self, device: str, state: DeviceState) -> None:
        """A device says it is online, or its last will says it is gone (retained)."""
        now = protocol.utcnow()
        status = Status(state=state, software="test", started_at=now, at=now)
        await self.publish(device, Channel.STATUS, status, retain=True)

    async def tap(self, uid: str) -> Decision:
        """Tap ``uid`` at the front door; return the gateway's decision."""
        async with device_client(self.broker) as client:
            event_id = uuid.uuid4().hex
            await client.publish(
                protocol.topic(SITE, "door-ctl-1", Channel.TAP),
                protocol.encode(tap_for(uid, event_id, FRONT_DOOR)),
                qos=1,
            )
            return await next_decision(client, event_id)


# The tests share one loop per module, so that they can share one browser.
@pytest_asyncio.fixture(loop_scope="module")
async def live(mosquitto: Mosquitto, tmp_path: Path) -> AsyncIterator[LiveGateway]:
    """The test space, with desks, a meeting room and two profiles, served on a free port."""
    database = tmp_path / "varco.db"
    with Store(f"sqlite:///{database}") as store:
        space = make_space(store)
        with store.session() as session:
            session.add(
                Device(id=DESK_NODE, site=SITE, kind=DeviceKind.DESK_NODE, name=DESK_NODE_NAME)
            )
    running = LiveGateway(mosquitto, database, space)
    await running.start()
    try:
        async with running.admin() as admin:
            for desk_id, name, zone, kind in DESKS:
                body = {"id": desk_id, "name": name, "zone": zone, "kind": kind}
                (await admin.post("/desks", json=body)).raise_for_status()
            for member, profile in ((space.ada, ADA_PROFILE), (space.grace, GRACE_PROFILE)):
                (await admin.put(f"/members/{member}/profile", json=profile)).raise_for_status()
        yield running
    finally:
        await running.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, with a new empty profile; each test opens its own context."""
    need(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing (apt install chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class PageLog:
    """What went wrong in the page: console errors, failed requests, HTTP errors."""

    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        page.on("request", lambda request: self.requests.append(request.url))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "assert"):
            self.errors.append(f"console {message.type}: {message.text}")

    def _failed(self, request: Request) -> None:
        # A page that navigates away cancels its event stream: that is no failure.
        if request.failure != "net::ERR_ABORTED":
            self.errors.append(f"request failed: {request.url} {request.failure}")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.errors.append(f"HTTP {response.status}: {response.url}")


@dataclass
class LivePage:
    page: Page
    log: PageLog


@pytest_asyncio.fixture(loop_scope="module")
async def live_page(live: LiveGateway, browser: Browser) -> AsyncIterator[LivePage]:
    """The live page, open on a laptop-sized screen and connected to its event stream."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    log = PageLog()
    log.watch(page)
    try:
        await page.goto(f"{live.url}/live")
        await page.locator("#connection[data-state=live]").wait_for(timeout=5000)
        await page.locator("[data-desk]").first.wait_for(timeout=5000)
        yield LivePage(page, log)
    finally:
        await context.close()
