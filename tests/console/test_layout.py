"""The console at the widths people use it, in a real headless Chromium.

At 360, 800, 1280 and 1920 px no two sections overlap and nothing runs off the side; the
links and health view is one click away; the compose draft survives a reload; the alarm
banner's Acknowledge lands in the acknowledgement's action field; offline recipients are
marked; the latency chart's history comes back after a reload; text meets WCAG AA
contrast. Screenshots of each width go to ``tests/console/artifacts/``.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, ViewportSize, async_playwright, expect

from hotline.endpoint.service import RunningEndpoint, wall_clock_ms
from hotline.network import Deadline
from hotline.protocol.vocab import Precedence
from hotline.testing.operators import LoggedIn
from tests.console.running import lone_endpoint, network_running, network_with_languages
from tests.console.test_browser import log_in
from tests.endpoint.builders import Author, deliver

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
WIDTHS: dict[int, ViewportSize] = {
    360: {"width": 360, "height": 740},
    800: {"width": 800, "height": 900},
    1280: {"width": 1280, "height": 720},
    1920: {"width": 1920, "height": 1080},
}
VIEWS = ("inbox", "outbox", "links", "compose")

expect.set_options(timeout=20_000)

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"no Chromium binary at {CHROMIUM} (CI installs one)"
)

# The page's top-level blocks: none may overlap another while both are shown.
BLOCKS = [
    "header.top", "#views", "#alarm-banner", "#system-banner", "#inbox-section",
    "#outbox-section", "#compose-section", "#links-section", "#checkpoint-section",
    "#alarms-section",
]

OVERLAPS_JS = """(selectors) => {
  const shown = [];
  for (const s of selectors) {
    const e = document.querySelector(s);
    if (!e) continue;
    const r = e.getBoundingClientRect();
    const style = getComputedStyle(e);
    if (r.width < 1 || r.height < 1 || style.visibility === "hidden") continue;
    shown.push([s, r]);
  }
  const clashes = [];
  for (let i = 0; i < shown.length; i++) {
    for (let j = i + 1; j < shown.length; j++) {
      const [a, ra] = shown[i], [b, rb] = shown[j];
      const w = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
      const h = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
      if (w > 0.5 && h > 0.5) clashes.push(`${a} overlaps ${b}`);
    }
    const [s, r] = shown[i];
    if (r.right > window.innerWidth + 0.5 || r.left < -0.5) clashes.push(`${s} leaves the page`);
  }
  const wide = document.documentElement.scrollWidth;
  if (wide > window.innerWidth) clashes.push(`the page scrolls sideways (${wide} px)`);
  return {clashes, shown: shown.map(([s]) => s)};
}"""

CONTRAST_JS = """() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(parseFloat);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const over = (top, under) => ({
    r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a), a: 1,
  });
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const cs = getComputedStyle(e);
      if (cs.backgroundImage !== "none") return null;  // a gradient: not judged here
      const c = parse(cs.backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let out = {r: 255, g: 255, b: 255, a: 1};
    for (const c of layers.reverse()) out = over(c, out);
    return out;
  };
  const failures = [];
  for (const el of document.querySelectorAll("body *")) {
    if (el.closest("svg, option, script, style")) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const r = el.getBoundingClientRect();
    const cs = getComputedStyle(el);
    if (r.width < 1 || r.height < 1 || cs.visibility === "hidden") continue;
    if (el.disabled || el.closest("[disabled]")) continue;  // inactive controls are exempt
    const bg = background(el);
    const fg = parse(cs.color);
    if (!bg || !fg) continue;
    const a = lum(over(fg, bg)), b = lum(bg);
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(cs.fontSize);
    const large = size >= 24 || (size >= 18.66 && parseInt(cs.fontWeight, 10) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      const what = `${el.tagName.toLowerCase()}#${el.id}.${el.className}`;
      failures.push(`${what} "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
    }
  }
  return failures;
}"""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@contextlib.asynccontextmanager
async def page_at(
    browser: Browser, endpoint: RunningEndpoint, size: ViewportSize
) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport=size)
    try:
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(endpoint.url + "/")
        await log_in(page)
        await expect(page.locator("body")).to_have_attribute("data-ready", "true")
        yield page
        assert errors == []
    finally:
        await context.close()


async def assert_no_overlap(page: Page, where: str) -> list[str]:
    found: dict[str, Any] = await page.evaluate(OVERLAPS_JS, BLOCKS)
    assert found["clashes"] == [], f"{where}: {found['clashes']}"
    shown: list[str] = found["shown"]
    return shown


async def fill_the_endpoint(net_author: Author, endpoint: RunningEndpoint) -> None:
    """An alarming warning received, and a few messages sent, so every view has content."""
    now = wall_clock_ms()
    warning = replace(net_author.warning(sender="BY", to=("LT",), ts=now),
                      text="Drone heading west along the river", lang="en")
    await endpoint.endpoint.received(deliver(net_author.net.seal(warning), 1))
    async with aiohttp.ClientSession(middlewares=(LoggedIn(),)) as http:
        for n in range(4):
            async with http.post(endpoint.url + "/api/messages", json={
                "t": "text", "to": ["BY"], "status": "exercise", "precedence": "routine",
                "text": f"Line check {n}: " + "long words " * 30, "lang": "en",
            }) as posted:
                assert posted.status == 202


@pytest.mark.parametrize("width", sorted(WIDTHS))
async def test_no_section_overlaps_and_links_are_one_click_away(
    tmp_path: Path, browser: Browser, width: int
) -> None:
    """At each width no two shown sections overlap nor leave the page, in every view; one
    click on the Links tab shows the links table and chart in the viewport; the language
    switch is labelled in English too."""
    net = network_with_languages({"BY": "be", "LT": "lt"})
    async with lone_endpoint(net, "LT", tmp_path) as lt:
        await fill_the_endpoint(Author(net), lt)
        async with page_at(browser, lt, WIDTHS[width]) as page:
            await expect(page.locator("#alarm-banner")).to_be_visible()
            # the language switch is findable by someone who reads no Lithuanian
            await expect(page.locator("#lang-label")).to_have_text("Kalba / Language")
            shown = await assert_no_overlap(page, f"{width} px, first view")
            assert "#inbox-section" in shown
            if width >= 1000:
                assert {"#inbox-section", "#outbox-section", "#compose-section"} <= set(shown)
            else:
                assert "#compose-section" not in shown  # one column, one view at a time
            await page.screenshot(path=str(ARTIFACTS / f"layout-{width}.png"), full_page=True)

            await page.click("#tab-links")
            links = page.locator("#links-section")
            await expect(links).to_be_in_viewport()
            await expect(page.locator("#links tr[data-link=BY]")).to_be_visible()
            await expect(page.locator("#latency-chart")).to_be_visible()
            await expect(page.locator("#tab-links")).to_have_attribute("aria-current", "true")
            await assert_no_overlap(page, f"{width} px, links view")
            await page.screenshot(path=str(ARTIFACTS / f"layout-{width}-links.png"),
                                  full_page=True)
            for view in VIEWS:
                await page.click(f"#tab-{view}")
                await assert_no_overlap(page, f"{width} px, {view} view")


async def test_text_meets_wcag_aa_contrast_in_every_view(
    tmp_path: Path, browser: Browser
) -> None:
    """Every shown text has a contrast of at least 4.5:1 (3:1 when large), in each view and
    on the alarm banner's button when focused or hovered."""
    net = network_with_languages({"BY": "en", "LT": "en"})
    async with lone_endpoint(net, "LT", tmp_path) as lt:
        await fill_the_endpoint(Author(net), lt)
        async with page_at(browser, lt, WIDTHS[1280]) as page:
            await page.emulate_media(reduced_motion="reduce")
            for view in VIEWS:
                await page.click(f"#tab-{view}")
                assert await page.evaluate(CONTRAST_JS) == [], view
            await page.focus("#alarm-ack")
            assert await page.evaluate(CONTRAST_JS) == [], "focused Acknowledge"
            await page.hover("#alarm-ack")
            assert await page.evaluate(CONTRAST_JS) == [], "hovered Acknowledge"


async def test_the_banner_acknowledge_opens_the_acknowledgement_on_a_phone(
    tmp_path: Path, browser: Browser
) -> None:
    """At 360 px, from the compose view, the banner's Acknowledge shows the incoming view with
    the message's action field focused and in view."""
    net = network_with_languages({"BY": "en", "LT": "en"})
    async with lone_endpoint(net, "LT", tmp_path) as lt:
        await fill_the_endpoint(Author(net), lt)
        async with page_at(browser, lt, WIDTHS[360]) as page:
            await page.click("#tab-compose")
            await expect(page.locator("#inbox-section")).to_be_hidden()
            await page.click("#alarm-ack")
            action = page.locator("#inbox li.alarming select.ack-action")
            await expect(action).to_be_focused()
            await expect(action).to_be_in_viewport()
            await page.screenshot(path=str(ARTIFACTS / "layout-360-acknowledge.png"))


async def test_the_compose_draft_survives_a_reload(tmp_path: Path, browser: Browser) -> None:
    """What the officer typed, the type and recipients chosen, come back after a reload;
    after sending, a reload starts from a clean form."""
    net = network_with_languages({"BY": "en", "LT": "en", "PL": "en"})
    async with lone_endpoint(net, "LT", tmp_path) as lt, \
            page_at(browser, lt, WIDTHS[800]) as page:
        await page.click("#tab-compose")
        await page.check("#t-text")
        await page.check("#to-PL")
        await page.select_option("#f-precedence", "priority")
        await page.fill("#f-text", "Half-written message about the balloon")
        await page.reload()
        await expect(page.locator("body")).to_have_attribute("data-ready", "true")
        await expect(page.locator("#compose-section")).to_be_visible()  # the view is kept
        await expect(page.locator("#t-text")).to_be_checked()
        await expect(page.locator("#to-PL")).to_be_checked()
        await expect(page.locator("#to-BY")).not_to_be_checked()
        await expect(page.locator("#f-precedence")).to_have_value("priority")
        await expect(page.locator("#f-text")).to_have_value(
            "Half-written message about the balloon")
        await page.click("#f-send")
        await expect(page.locator("#compose-status")).not_to_be_empty()
        await page.reload()
        await expect(page.locator("body")).to_have_attribute("data-ready", "true")
        await expect(page.locator("#f-text")).to_have_value("")
        await expect(page.locator("#t-warning")).to_be_checked()


async def test_offline_recipients_are_marked_and_alarm_after_the_threshold(
    tmp_path: Path, browser: Browser
) -> None:
    """With LV not running, BY's compose form marks LV offline, a message waiting for LV says
    so, and an alarm follows once LV has been offline past the flash delivery deadline."""
    net = network_with_languages({"BY": "en", "LT": "en", "LV": "en"})
    deadlines = {**net.network.deadlines, Precedence.FLASH: Deadline(1_000, 60_000)}
    net = replace(net, network=replace(net.network, deadlines=deadlines))
    async with (
        network_running(net, tmp_path, ("BY", "LT")) as (_, endpoints),
        page_at(browser, endpoints["BY"], WIDTHS[1280]) as page,
        aiohttp.ClientSession(middlewares=(LoggedIn(),)) as http,
    ):
        box = page.locator("#to-boxes span", has=page.locator("#to-LV"))
        await expect(box.locator(".offline-mark")).to_be_visible()
        await expect(page.locator("#to-boxes span", has=page.locator("#to-LT"))
                     .locator(".offline-mark")).to_have_count(0)
        async with http.post(endpoints["BY"].url + "/api/messages", json={
            "t": "text", "to": ["LV", "LT"], "status": "exercise", "precedence": "routine",
            "text": "Are you there?", "lang": "en",
        }) as posted:
            assert posted.status == 202
            message_id = (await posted.json())["id"]
        row = page.locator(f'#outbox li[data-id="{message_id}"]')
        waiting = row.locator('tr[data-party="LV"] td[data-stage="delivered"]')
        await expect(waiting).to_have_class("offline")
        await expect(waiting).to_contain_text("LV")
        await expect(row.locator('tr[data-party="LT"] td[data-stage="delivered"]')).to_have_class(
            "reached")
        await expect(page.locator("#system-banner")).to_contain_text("LV")
        await page.click("#tab-links")
        await expect(page.locator("#alarms li[data-event=peer_offline]")).to_contain_text("LV")


async def test_the_chart_keeps_its_history_across_a_reload(
    tmp_path: Path, browser: Browser
) -> None:
    """The latency chart is drawn from the journal: after a reload the delivery line to LT is
    there at once, on a logarithmic axis (ticks at powers of ten)."""
    net = network_with_languages({"BY": "en", "LT": "en"})
    async with (
        network_running(net, tmp_path, ("BY", "LT")) as (_, endpoints),
        aiohttp.ClientSession(middlewares=(LoggedIn(),)) as http,
    ):
        by = endpoints["BY"]
        for n in range(3):
            async with http.post(by.url + "/api/messages", json={
                "t": "text", "to": ["LT"], "status": "exercise", "precedence": "routine",
                "text": f"Check {n}", "lang": "en",
            }) as posted:
                assert posted.status == 202
        async with page_at(browser, by, WIDTHS[1280]) as page:
            await page.click("#tab-links")
            line = page.locator('#latency-chart [data-series="delivered/LT"]')
            await expect(line).to_be_visible()
            await page.reload()
            await expect(page.locator("body")).to_have_attribute("data-ready", "true")
            await page.click("#tab-links")
            await expect(line).to_be_visible()
            ticks = await page.locator("#latency-chart text.tick").all_text_contents()
            assert ticks[:2] == ["1 ms", "10 ms"]
            await page.screenshot(path=str(ARTIFACTS / "layout-1280-chart.png"))
        async with http.get(by.url + "/api/links/history?window_s=600") as answer:
            history = await answer.json()
        assert len(history["series"]["delivered/LT"]) == 3
        assert history["window_ms"] == 600_000
        async with http.get(by.url + "/api/links/history?window_s=5") as refused:
            assert refused.status == 400
