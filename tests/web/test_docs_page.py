"""``/docs`` in a real headless Chromium that reaches nothing but the gateway."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Route, expect

from tests.web.conftest import LiveGateway, PageLog

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module")
async def offline(
    live: LiveGateway, browser: Browser
) -> AsyncIterator[tuple[BrowserContext, list[str]]]:
    """A browser context whose every request to anywhere but the gateway fails, as offline."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    blocked: list[str] = []

    async def only_the_gateway(route: Route) -> None:
        if route.request.url.startswith(f"{live.url}/"):
            await route.continue_()
        else:
            blocked.append(route.request.url)
            await route.abort("internetdisconnected")

    await context.route("**/*", only_the_gateway)
    try:
        yield context, blocked
    finally:
        await context.close()


async def test_docs_render_every_endpoint_without_the_internet(
    live: LiveGateway, offline: tuple[BrowserContext, list[str]]
) -> None:
    context, blocked = offline
    page = await context.new_page()
    log = PageLog()
    log.watch(page)
    await page.goto(f"{live.url}/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Varco gateway")
    # Every operation of the API is listed, members' and the access log's among them.
    operations = page.locator(".opblock-summary-path")
    await expect(operations.first).to_be_visible()
    paths = await operations.all_inner_texts()
    assert "/members" in [p.replace("\u200b", "") for p in paths]
    assert "/access-events" in [p.replace("\u200b", "") for p in paths]
    # The button to paste a token works: it opens the dialog.
    await page.locator(".btn.authorize").click()
    await expect(page.locator(".modal-ux")).to_be_visible()
    assert blocked == [], f"the page reached out beyond the gateway: {blocked}"
    assert log.errors == []


async def test_the_docs_assets_are_served_by_the_gateway(live: LiveGateway) -> None:
    page = await live.get_text("/docs")
    links = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert len(links) >= 3
    assert all(link.startswith("/docs/static/") for link in links), links
    assert len(await live.get_text("/docs/static/swagger-ui-bundle.js")) > 100_000
