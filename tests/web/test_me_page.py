"""A member's own page in a real headless Chromium: the link an admin sends, opened offline."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, Route, expect

from tests.web.conftest import LiveGateway, PageLog

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module")
async def page(live: LiveGateway, browser: Browser) -> AsyncIterator[tuple[Page, PageLog]]:
    """A phone-sized page that reaches nothing but the gateway."""
    context = await browser.new_context(viewport={"width": 390, "height": 844})

    async def only_the_gateway(route: Route) -> None:
        if route.request.url.startswith(f"{live.url}/"):
            await route.continue_()
        else:
            await route.abort("internetdisconnected")

    await context.route("**/*", only_the_gateway)
    page = await context.new_page()
    log = PageLog()
    log.watch(page)
    try:
        yield page, log
    finally:
        await context.close()


async def test_a_member_opts_in_on_their_page(
    live: LiveGateway, page: tuple[Page, PageLog]
) -> None:
    tab, log = page
    async with live.admin() as admin:
        made = await admin.post(f"/members/{live.space.linus}/profile-link", json={})
        made.raise_for_status()
    url = made.json()["url"]
    token = url.partition("#")[2]

    await tab.goto(f"{live.url}{url}")
    await expect(tab.locator("#greeting")).to_have_text("Hello, Linus Torvalds.")
    assert token not in tab.url  # out of the address bar once read
    await expect(tab.locator("#consent")).to_have_text("You are not on the board.")
    await tab.get_by_label("Show me on the board").check()
    await tab.get_by_label("Name to show").fill("Linus")
    await tab.get_by_label("Skills, separated by commas").fill("kernels, git")
    await tab.get_by_role("button", name="Save").click()
    await expect(tab.locator("#status")).to_have_text("Saved.")
    await expect(tab.locator("#consent")).to_contain_text("You are on the board since")
    async with live.admin() as admin:
        profile = (await admin.get(f"/members/{live.space.linus}/profile")).json()

    assert (profile["opt_in"], profile["skills"]) == (True, ["kernels", "git"])
    assert profile["consent_via"] == "profile link"
    assert log.errors == []


async def test_a_page_with_no_valid_link_says_to_ask_for_a_new_one(
    live: LiveGateway, page: tuple[Page, PageLog]
) -> None:
    tab, _ = page
    await tab.goto(f"{live.url}/me#vm_not-a-link")

    await expect(tab.locator("#status")).to_have_text(
        "This link has expired or is not valid. Ask the space for a new one."
    )
    await expect(tab.locator("#profile")).to_be_hidden()
