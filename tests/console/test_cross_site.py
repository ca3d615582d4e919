"""A web page in the officer's browser attacks the endpoint; nothing is sent and nothing read.

The officer is logged in to LT's console in the same browser profile. A page
from another origin (another port on 127.0.0.1: same site, other origin, so the
SameSite=Strict cookie still goes along) tries a text/plain form POST, no-cors
and CORS fetches. A page reached by DNS rebinding (a script of
``rebind.evil.example:PORT``, after that name resolves to 127.0.0.1, as
Chromium's ``--host-resolver-rules`` make it) reads ``/api/inbox`` and posts
JSON to what is then its own origin.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, async_playwright, expect

from hotline.endpoint.service import RunningEndpoint, wall_clock_ms
from hotline.protocol.ids import format_id
from hotline.testing.operators import operator_headers
from tests.console.running import lone_endpoint, network_with_languages
from tests.console.test_browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, WAIT_MS, log_in
from tests.endpoint.builders import Author, deliver

REBIND_HOST = "rebind.evil.example"
FLASH = {"t": "text", "to": ["BY"], "status": "actual", "precedence": "flash",
         "text": "ATTACK", "lang": "en"}

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"no Chromium binary at {CHROMIUM} (CI installs one)"
)

# The attacking page: every way a page can make a browser post, and read what comes back.
ATTACK_JS = """
async (target) => {
  const flash = FLASH_JSON;
  const out = {};
  // 1. a text/plain form POST into a hidden frame (the classic CSRF)
  const frame = document.createElement("iframe");
  frame.name = "sink";
  document.body.append(frame);
  const form = document.createElement("form");
  form.method = "POST"; form.action = target + "/api/messages"; form.target = "sink";
  form.enctype = "text/plain";
  const input = document.createElement("input");
  const text = JSON.stringify(flash);
  input.name = text.slice(0, -1) + ',"pad":"'; input.value = '"}';
  form.append(input);
  document.body.append(form);
  const loaded = new Promise((resolve) => { frame.onload = resolve; });
  form.submit();
  await loaded;
  out.form = "submitted";
  // 2. a no-cors fetch with the cookie (its answer is opaque; the post is what matters)
  try {
    const r = await fetch(target + "/api/messages", {
      method: "POST", mode: "no-cors", credentials: "include",
      headers: { "Content-Type": "application/json" }, body: text });
    out.nocors = r.type + ":" + r.status;
  } catch (e) { out.nocors = "error"; }
  // 3. a CORS fetch with JSON and a guessed CSRF header (needs a preflight)
  try {
    const r = await fetch(target + "/api/messages", {
      method: "POST", credentials: "include",
      headers: { "Content-Type": "application/json", "X-Hotline-CSRF": "guess" }, body: text });
    out.cors = String(r.status) + ":" + await r.text();
  } catch (e) { out.cors = "blocked"; }
  // 4. read the inbox across origins
  try {
    const r = await fetch(target + "/api/inbox", { credentials: "include" });
    out.read = String(r.status) + ":" + await r.text();
  } catch (e) { out.read = "blocked"; }
  return out;
}
""".replace("FLASH_JSON", json.dumps(FLASH))

REBOUND_JS = """
async () => {
  const flash = FLASH_JSON;
  const out = {};
  const inbox = await fetch("/api/inbox");
  out.read = String(inbox.status) + ":" + await inbox.text();
  const page = await fetch("/");
  out.page = String(page.status) + ":" + await page.text();
  const posted = await fetch("/api/messages", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(flash) });
  out.post = String(posted.status) + ":" + await posted.text();
  return out;
}
""".replace("FLASH_JSON", json.dumps(FLASH))


@contextlib.asynccontextmanager
async def attacker_site() -> AsyncIterator[str]:
    """A web server on another loopback port: the attacker's origin."""
    app = web.Application()

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<!DOCTYPE html><title>cats</title><p>cute cats</p>",
                            content_type="text/html")

    app.router.add_get("/", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    rules = f"--host-resolver-rules=MAP {REBIND_HOST} 127.0.0.1"
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM,
                                            args=[*CHROMIUM_ARGS, rules])
        try:
            yield launched
        finally:
            await launched.close()


async def _outbox(endpoint: RunningEndpoint) -> list[Any]:
    async with aiohttp.ClientSession() as http:
        headers = await operator_headers(http, endpoint.url)
        async with http.get(endpoint.url + "/api/outbox", headers=headers) as response:
            messages: list[Any] = (await response.json())["messages"]
    return messages


async def test_a_page_from_another_origin_sends_nothing_and_reads_nothing(
    tmp_path: Path, browser: Browser
) -> None:
    """With the officer logged in, a page on another port posts four ways: LT sends nothing,
    and the page reads no inbox."""
    net = network_with_languages({"BY": "en", "LT": "en"})
    async with lone_endpoint(net, "LT", tmp_path) as lt, attacker_site() as evil:
        warning = Author(net).warning(sender="BY", to=("LT",), ts=wall_clock_ms())
        await lt.endpoint.received(deliver(net.seal(warning), 1))
        secret = format_id(warning.id)
        context = await browser.new_context(viewport=VIEWPORT)
        try:
            console = await context.new_page()
            await console.goto(lt.url + "/")
            await log_in(console)
            await expect(console.locator("body")).to_have_attribute("data-ready", "true")
            await expect(console.locator(f'#inbox li[data-id="{secret}"]')).to_be_visible()

            attacker = await context.new_page()
            await attacker.goto(evil + "/")
            results = await attacker.evaluate(ATTACK_JS, lt.url)
        finally:
            await context.close()
        outbox = await _outbox(lt)
    assert results["form"] == "submitted"
    assert results["nocors"] == "opaque:0"  # the page learns nothing from the answer
    assert results["cors"] == "blocked"  # the preflight finds no CORS permission
    assert results["read"] == "blocked"
    assert secret not in json.dumps(results)
    assert outbox == []


async def test_a_dns_rebinding_page_reads_nothing_and_sends_nothing(
    tmp_path: Path, browser: Browser
) -> None:
    """A page served as rebind.evil.example:PORT, whose name then points at LT, gets 421 for
    the inbox, the console and its JSON post; LT sends nothing."""
    net = network_with_languages({"BY": "en", "LT": "en"})
    async with lone_endpoint(net, "LT", tmp_path) as lt:
        warning = Author(net).warning(sender="BY", to=("LT",), ts=wall_clock_ms())
        await lt.endpoint.received(deliver(net.seal(warning), 1))
        secret = format_id(warning.id)
        rebound = f"http://{REBIND_HOST}:{lt.port}/"
        context = await browser.new_context(viewport=VIEWPORT)
        try:
            console = await context.new_page()  # the officer is logged in meanwhile
            await console.goto(lt.url + "/")
            await log_in(console)
            page = await context.new_page()
            # the attacker's script now runs in the origin rebind.evil.example:PORT, whose
            # name resolves to 127.0.0.1 (evaluate() stands in for the script it served
            # before the name was rebound)
            answer = await page.goto(rebound, timeout=WAIT_MS)
            assert answer is not None
            assert answer.status == 421
            results = await page.evaluate(REBOUND_JS)
        finally:
            await context.close()
        outbox = await _outbox(lt)
    assert results["read"].startswith("421:")
    assert results["page"].startswith("421:")
    assert results["post"].startswith("421:")
    assert secret not in json.dumps(results)
    assert outbox == []
