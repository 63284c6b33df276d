"""The live page in a real headless Chromium, against the real gateway on a real mosquitto."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Locator, Page, ViewportSize, expect

from tests.conftest import free_port, wait_for_port
from tests.factories import FRONT_DOOR, OFFICE_DOOR, Space
from tests.web.conftest import (
    ADA_PROFILE,
    DESK_NODE,
    DESK_NODE_NAME,
    NEVER_SHOWN,
    LiveGateway,
    LivePage,
    PageLog,
)
from varco.protocol import DeviceState

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "live-page.png"
ARTIFACTS = ROOT / "artifacts"

PHONE: ViewportSize = {"width": 390, "height": 844}
WALL_SCREEN: ViewportSize = {"width": 1920, "height": 1080}

# The WCAG contrast ratio of every text node's colour against the background it is drawn on.
CONTRAST_JS = """
() => {
  const rgba = (css) => {
    const m = css.match(/rgba?\\(([^)]+)\\)/);
    const [r, g, b, a = 1] = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return [r, g, b, a];
  };
  const luminance = ([r, g, b]) => {
    const c = [r, g, b].map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const background = (node) => {
    for (let n = node; n; n = n.parentElement) {
      const bg = rgba(getComputedStyle(n).backgroundColor);
      if (bg[3] > 0) return bg;
    }
    return rgba(getComputedStyle(document.documentElement).backgroundColor);
  };
  const results = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    const node = t.parentElement;
    if (!t.textContent.trim() || !node.checkVisibility()) continue;
    const style = getComputedStyle(node);
    const fg = luminance(rgba(style.color));
    const bg = luminance(background(node));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    results.push([t.textContent.trim().slice(0, 40), Math.round(ratio * 100) / 100]);
  }
  return results;
}
"""


def desk(page: Page, desk_id: str) -> Locator:
    return page.locator(f'[data-desk="{desk_id}"]')


async def test_the_page_loads_without_errors_and_shows_the_space(live_page: LivePage) -> None:
    page, log = live_page.page, live_page.log

    await expect(page).to_have_title(re.compile("Test site"))
    await expect(page.get_by_role("heading", name="Desks and rooms")).to_be_visible()
    await expect(page.get_by_role("heading", name="Lobby")).to_be_visible()
    await expect(page.get_by_role("heading", name="Private offices")).to_be_visible()
    # No sensor has reported yet: every desk and room is there, its state written out.
    await expect(page.locator("[data-desk]")).to_have_count(5)
    await expect(page.locator('[data-desk][data-state="unknown"]')).to_have_count(5)
    await expect(page.get_by_role("listitem", name="Meeting room, status unknown")).to_be_visible()
    await expect(page.locator(f'[data-door="{FRONT_DOOR}"]')).to_contain_text("Front")
    await expect(page.locator(f'[data-door="{OFFICE_DOOR}"]')).to_be_visible()
    await expect(page.locator("#offline-banner")).to_be_hidden()
    await expect(page.get_by_role("heading", name="Who's in today")).to_be_visible()
    await expect(page.get_by_label("Find someone by skill")).to_have_attribute("id", "search")
    await expect(page.locator("[data-member]")).to_have_count(0)

    # The keyboard reaches the skip link, then the search, with nothing in between.
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to who's in today")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.locator("#search")).to_be_focused()

    assert log.errors == []


async def test_a_desk_event_on_mqtt_turns_the_desk_occupied_within_a_second(
    live: LiveGateway, live_page: LivePage
) -> None:
    page = live_page.page
    await live.desk("desk-2", occupied=False)
    await expect(desk(page, "desk-2")).to_have_attribute("data-state", "free", timeout=5000)
    lobby = page.locator('[data-area="lobby"] .counts')
    await expect(lobby).to_have_text(re.compile(r"^1 free · 0 occupied"))

    started = time.monotonic()
    await live.desk("desk-2", occupied=True)
    await expect(desk(page, "desk-2")).to_have_attribute("data-state", "occupied", timeout=1000)
    elapsed = time.monotonic() - started

    await expect(page.get_by_role("listitem", name="Desk 2, occupied")).to_contain_text("since")
    await expect(lobby).to_have_text(re.compile(r"^0 free · 1 occupied"))
    assert elapsed < 1.0, f"the desk turned occupied on the page after {elapsed:.2f}s"
    assert live_page.log.errors == []


async def test_a_member_who_opted_in_and_tapped_in_is_on_the_board_and_found_by_skill(
    live: LiveGateway, live_page: LivePage
) -> None:
    page = live_page.page
    decision = await live.tap(Space.ADA_BADGE)
    assert decision.granted

    ada = page.locator('[data-member="Ada"]')
    await expect(ada).to_be_visible(timeout=5000)
    await expect(ada).to_contain_text("Mathematician")
    await expect(ada).to_contain_text("Bernoulli numbers")

    search = page.get_by_label("Find someone by skill")
    await search.fill("ENGINES")  # any case, any part of a skill
    await expect(ada).to_be_visible()
    await search.fill("tax law")
    await expect(page.locator("[data-member]")).to_have_count(0)
    await expect(page.locator("#board-count")).to_contain_text("Nobody in today matches")
    await search.press("Escape")
    await expect(ada).to_be_visible()
    # A skill is a button: choosing it searches for it.
    await ada.get_by_role("button", name="notation").click()
    await expect(search).to_have_value("notation")
    await expect(ada).to_be_visible()

    found = await live.get_json("/live/board?skill=engines")
    assert [m["display_name"] for m in found["members"]] == ["Ada"]
    assert found["members"][0]["skills"] == ADA_PROFILE["skills"]
    assert (await live.get_json("/live/board?skill=tax%20law")) == {"members": []}
    assert live_page.log.errors == []


async def test_a_member_who_did_not_opt_in_is_nowhere_on_the_page_or_in_its_api(
    live: LiveGateway, live_page: LivePage
) -> None:
    page = live_page.page
    assert (await live.tap(Space.GRACE_BADGE)).granted
    assert (await live.tap(Space.ADA_BADGE)).granted
    # Ada came in after Grace: once Ada shows, Grace's entry has been seen too.
    await expect(page.locator('[data-member="Ada"]')).to_be_visible(timeout=5000)
    await expect(page.locator("#summary")).to_contain_text("2 people in")

    texts = {
        "the page": await page.content(),
        "/live/state": await live.get_text("/live/state"),
        "/live/board": await live.get_text("/live/board"),
        "/live/board?skill=COBOL": await live.get_text("/live/board?skill=COBOL"),
        "/live/events": await live.events_text(),
    }
    assert '"present":2' in texts["/live/state"].replace(" ", "")
    for where, text in texts.items():
        for secret in NEVER_SHOWN:
            assert secret.lower() not in text.lower(), f"{secret!r} is in {where}"
    await page.get_by_label("Find someone by skill").fill("cobol")
    await expect(page.locator("[data-member]")).to_have_count(0)
    assert live_page.log.errors == []


async def test_the_page_reconnects_by_itself_after_the_gateway_restarts(
    live: LiveGateway, live_page: LivePage
) -> None:
    page, log = live_page.page, live_page.log
    connection = page.locator("#connection")
    assert log.errors == []

    await live.stop()
    await expect(connection).to_have_attribute("data-state", "reconnecting", timeout=5000)
    await expect(connection).to_have_text(re.compile("Reconnecting"))
    refreshes = len([url for url in log.requests if url.endswith("/live/state")])
    await live.start()
    await expect(connection).to_have_attribute("data-state", "live", timeout=10_000)
    await expect(connection).to_have_text("Live")

    started = time.monotonic()
    await live.desk("desk-3", occupied=True)
    await expect(desk(page, "desk-3")).to_have_attribute("data-state", "occupied", timeout=1000)
    assert time.monotonic() - started < 1.0
    # Back online, the page asked for the whole state again rather than trusting the stream.
    assert len([url for url in log.requests if url.endswith("/live/state")]) > refreshes


async def test_stopping_the_gateway_ends_open_event_streams_cleanly(live: LiveGateway) -> None:
    async with (
        httpx.AsyncClient(base_url=live.url, timeout=5) as client,
        client.stream("GET", "/live/events") as response,
    ):
        stream = response.aiter_text()
        text = ""
        while text.count("\n\n") < 2:  # the state and board snapshots
            text += await anext(stream)
        await live.stop()  # would wait out the 30 s graceful timeout on an open stream
        # The stream ended as a response ends (httpx raises on a connection cut short).
        rest = [chunk async for chunk in stream]
    assert "event: state" in text
    assert "event: board" in text
    assert "".join(rest).endswith("\n\n") or not rest  # whole events only, to the last


async def test_an_offline_device_raises_a_banner_with_its_name(
    live: LiveGateway, live_page: LivePage
) -> None:
    page = live_page.page
    banner = page.get_by_role("alert")

    await live.device_status(DESK_NODE, DeviceState.OFFLINE)
    await expect(banner).to_be_visible(timeout=5000)
    await expect(banner).to_contain_text(DESK_NODE_NAME)
    await expect(page.locator("#offline-banner")).to_be_visible()

    await live.device_status(DESK_NODE, DeviceState.ONLINE)
    await expect(page.locator("#offline-banner")).to_be_hidden(timeout=5000)
    assert live_page.log.errors == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_the_page_reads_on_a_phone_and_on_a_wall_screen_with_aa_contrast(
    live: LiveGateway, browser: Browser, scheme: str
) -> None:
    await live.desk("desk-1", occupied=True)
    await live.desk("desk-2", occupied=False)
    await live.device_status(DESK_NODE, DeviceState.OFFLINE)  # the banner's colours too
    assert (await live.tap(Space.ADA_BADGE)).granted
    sizes = {}
    for name, viewport in (("phone", PHONE), ("wall screen", WALL_SCREEN)):
        context = await browser.new_context(
            viewport=viewport,
            color_scheme="dark" if scheme == "dark" else "light",
        )
        page = await context.new_page()
        log = PageLog()
        log.watch(page)
        await page.goto(f"{live.url}/live")
        await expect(page.locator('[data-desk="desk-1"]')).to_have_attribute(
            "data-state", "occupied", timeout=5000
        )
        await expect(page.locator('[data-member="Ada"]')).to_be_visible(timeout=5000)
        await expect(page.locator("#offline-banner")).to_be_visible(timeout=5000)

        spaces = await page.locator("section.spaces").bounding_box()
        board = await page.locator("section.board").bounding_box()
        assert spaces is not None
        assert board is not None
        if name == "phone":  # one column, nothing to scroll sideways
            assert board["x"] == spaces["x"]
            assert board["y"] > spaces["y"]
            assert await page.evaluate("document.documentElement.scrollWidth <= innerWidth")
        else:  # the board beside the space
            assert board["x"] > spaces["x"] + spaces["width"] - 1
        sizes[name] = await page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")

        low = [(text, ratio) for text, ratio in await page.evaluate(CONTRAST_JS) if ratio < 4.5]
        assert low == [], f"text below 4.5:1 on a {name} ({scheme}): {low}"
        assert log.errors == []
        await context.close()
    assert sizes["wall screen"] >= 1.4 * sizes["phone"], sizes


@pytest_asyncio.fixture(loop_scope="module")
async def demo() -> AsyncIterator[str]:
    """``varco demo`` in its own process, as a person would start it; its URL."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "varco", "demo", "--port", str(port)],
        *["--duration", "20", "--seed", "1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    reading = asyncio.create_task(process.stdout.read())  # all it prints, kept for the report
    try:
        await asyncio.to_thread(wait_for_port, port, 15)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()  # SIGTERM: the demo stops cleanly
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            await process.wait()
            output = (await reading).decode()
            raise AssertionError(
                f"the demo did not stop within 10s of SIGTERM:\n{output}"
            ) from None
    output = (await reading).decode()
    assert process.returncode == 0, output


async def test_a_screenshot_of_the_page_in_the_demo(demo: str, browser: Browser) -> None:
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    page = await context.new_page()
    log = PageLog()
    log.watch(page)
    response = await page.goto(demo)  # / leads to the live page
    assert response is not None
    assert response.url.endswith("/live")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(page.locator("[data-desk]")).to_have_count(6, timeout=10_000)
    await expect(page.locator('[data-desk][data-state="unknown"]')).to_have_count(0)
    # Let the simulated members come in and sit down for a while.
    await expect(page.locator("[data-member]").first).to_be_visible(timeout=10_000)
    await expect(page.locator('[data-desk][data-state="occupied"]').first).to_be_visible(
        timeout=10_000
    )
    # Every run leaves the screenshot in artifacts/ (CI keeps it); the copy the README shows,
    # in docs/, is refreshed only on request, so that a test run leaves the tree as it was.
    ARTIFACTS.mkdir(exist_ok=True)
    artifact = ARTIFACTS / SCREENSHOT.name
    await page.screenshot(path=artifact, full_page=True)
    if os.environ.get("VARCO_UPDATE_SCREENSHOT") or not SCREENSHOT.exists():
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copy(artifact, SCREENSHOT)
    await context.close()
    assert log.errors == []
