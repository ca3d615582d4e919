"""Text that lies: a note that would read "NOT RECEIVED" right to left never reaches a console."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from playwright.async_api import Browser, expect

from hotline.testing.operators import operator_headers
from tests.console.running import network_running, network_with_languages
from tests.console.test_browser import browser, console  # noqa: F401  (the fixture)

LYING_NOTE = "\u202eDEVIECER TON\u202c"  # shows as "NOT RECEIVED" where bidi is honoured


async def test_a_right_to_left_override_in_a_note_is_refused_and_never_shown(
    tmp_path: Path, browser: Browser  # noqa: F811
) -> None:
    """LT's officer types a note wrapped in U+202E: 422 naming the note and the character;
    the acknowledgement that goes out has an honest note, and BY never shows NOT RECEIVED."""
    net = network_with_languages({"BY": "en", "LT": "en"})
    async with (
        network_running(net, tmp_path, ("BY", "LT")) as (_, endpoints),
        console(browser, endpoints["LT"]) as lt,
        console(browser, endpoints["BY"]) as by,
        aiohttp.ClientSession() as http,
    ):
        text = {"t": "text", "to": ["LT"], "status": "exercise", "precedence": "flash",
                "text": "Did you receive the track?", "lang": "en"}
        async with http.post(endpoints["BY"].url + "/api/messages", json=text,
                             headers=await operator_headers(http, endpoints["BY"].url)) as r:
            assert r.status == 202
            message_id = (await r.json())["id"]

        row = lt.page.locator(f'#inbox li[data-id="{message_id}"]')
        note = row.locator("input.ack-note")
        await note.fill(LYING_NOTE)
        await note.press("Enter")
        await expect(row.locator(".ack-error")).to_contain_text("U+202E")
        await expect(row.locator(".ack-error")).to_contain_text("schema")
        await expect(row).to_have_attribute("data-acknowledged", "false")

        await note.fill("Received, tracking.")
        await note.press("Enter")
        await expect(row).to_have_attribute("data-acknowledged", "true")
        acked = by.page.locator(
            f'#outbox li[data-id="{message_id}"] tr[data-party="LT"] td[data-stage="acknowledged"]')
        await expect(acked).to_contain_text("Received, tracking.")
        await expect(acked.locator("bdi.freetext-inline")).to_have_attribute("dir", "auto")
        shown = await by.page.locator("body").inner_text()
        assert "NOT RECEIVED" not in shown
        assert "\u202e" not in shown
        assert "\u202e" not in await lt.page.locator("#inbox").inner_text()
