"""The console in a real headless Chromium against real endpoints and a real relay.

Skipped only when no Chromium binary exists on this machine (CI installs one).
Screenshots of each console at 1366 by 768 go to ``tests/console/artifacts/``.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Page,
    Request,
    ViewportSize,
    async_playwright,
    expect,
)

from hotline.endpoint.alarms import AlarmKind, RelaySuspected
from hotline.endpoint.events import CheckpointInconsistent
from hotline.endpoint.service import (
    EndpointConfig,
    RunningEndpoint,
    serve_endpoint,
    wall_clock_ms,
)
from hotline.network import Deadline, RelayInfo
from hotline.protocol.bodies import Predicted, TextBody, WarningBody
from hotline.protocol.vocab import Precedence, Status
from hotline.testing.operators import OPERATOR, PASSWORD, add_operator, operator_headers
from tests.console.files import catalogue
from tests.console.running import (
    closed_port,
    lone_endpoint,
    network_running,
    network_with_languages,
)
from tests.endpoint.builders import Author, deliver
from tests.factories import seeded_key

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
VIEWPORT: ViewportSize = {"width": 1366, "height": 768}
WAIT_MS = 20_000
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

# every wait is bounded, and generous enough for a loaded CI machine
expect.set_options(timeout=WAIT_MS)

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"no Chromium binary at {CHROMIUM} (CI installs one)"
)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Console:
    """One endpoint's console in its own browser context, watching what the page does."""

    page: Page
    endpoint: RunningEndpoint
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def foreign_requests(self) -> list[str]:
        """Requests to any host but this endpoint (there must be none)."""
        own = f"{self.endpoint.host}:{self.endpoint.port}"
        return [url for url in self.requests if urlsplit(url).netloc != own]

    async def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        await self.page.screenshot(path=str(ARTIFACTS / name))


@contextlib.asynccontextmanager
async def console(browser: Browser, endpoint: RunningEndpoint) -> AsyncIterator[Console]:
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        page = await context.new_page()
        watched = Console(page, endpoint)

        def on_request(request: Request) -> None:
            watched.requests.append(request.url)

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                watched.errors.append(message.text)

        page.on("request", on_request)
        page.on("console", on_console)
        page.on("pageerror", lambda exc: watched.errors.append(str(exc)))
        await page.goto(endpoint.url + "/")
        await log_in(page)
        await expect(page.locator("body")).to_have_attribute("data-ready", "true")
        yield watched
    finally:
        await context.close()


async def log_in(page: Page, name: str = OPERATOR, password: str = PASSWORD) -> None:
    """Log in through the console's login view, as the officer would."""
    await expect(page.locator("#login")).to_be_visible()
    await page.fill("#login-name", name)
    await page.fill("#login-password", password)
    await page.press("#login-password", "Enter")
    await expect(page.locator("#login")).to_be_hidden()


def _ui(lang: str, key: str) -> str:
    text: str = catalogue(lang)["ui"][key]
    return text


def _code(lang: str, group: str, value: str) -> str:
    text: str = catalogue(lang)["codes"][group][value]
    return text


async def _compose_flash_warning(page: Page, text: str) -> None:
    """Fill BY's compose form as a duty officer would, and submit it with the keyboard."""
    await page.check("#t-warning")
    await page.check("#to-LT")
    await page.select_option("#f-status", "exercise")
    await page.select_option("#f-precedence", "flash")
    for selector, value in [
        ("#f-lat", "54.352"), ("#f-lon", "25.917"), ("#f-pos-err", "300"), ("#f-alt", "450"),
        ("#f-heading", "275"), ("#f-speed", "31"), ("#f-count", "2"), ("#f-confidence", "0.85"),
        ("#f-border", "BY-LT"), ("#f-crossing-min", "4"), ("#f-text", text),
    ]:
        await page.fill(selector, value)
    await page.select_option("#f-alt-ref", "agl")
    await page.select_option("#f-object", "uav")
    await page.select_option("#f-source", "radar")
    await page.select_option("#f-advice", "prepare")
    await page.select_option("#f-lang", "be")
    await page.fill("#f-sensor", "BY-R-17")
    await page.press("#f-sensor", "Enter")  # Enter in a field submits the form


async def test_a_flash_warning_goes_from_one_console_to_another_and_back_acknowledged(
    tmp_path: Path, browser: Browser
) -> None:
    """BY composes a flash warning; LT's console alarms live; LT acknowledges; BY sees it."""
    net = network_with_languages({"BY": "be", "LT": "lt"})
    net = replace(net, network=replace(net.network, link_test_interval_ms=500))
    text = "Дрон ідзе на захад <b>не HTML</b>"
    async with (
        network_running(net, tmp_path, ("BY", "LT")) as (_, endpoints),
        console(browser, endpoints["LT"]) as lt,
        console(browser, endpoints["BY"]) as by,
    ):
        # each console speaks its endpoint's configured language
        await expect(lt.page.locator("html")).to_have_attribute("lang", "lt")
        await expect(by.page.locator("html")).to_have_attribute("lang", "be")
        await expect(lt.page.locator("#inbox-h [data-i18n=incoming]")).to_have_text(
            _ui("lt", "incoming"))
        await lt.page.evaluate("window.__notReloaded = true")

        await _compose_flash_warning(by.page, text)
        await expect(by.page.locator("#compose-status")).not_to_be_empty()
        sent = by.page.locator("#outbox li.msg").first
        await expect(sent.locator('tr[data-party="LT"] td[data-stage="accepted"]')).to_have_class(
            "reached")
        message_id = await sent.get_attribute("data-id")
        assert message_id

        # LT: the alarm is raised live, without a reload
        banner = lt.page.locator("#alarm-banner")
        await expect(banner).to_be_visible()
        await expect(banner).to_have_attribute("data-id", message_id)
        row = lt.page.locator(f'#inbox li[data-id="{message_id}"]')
        await expect(row).to_have_class(re.compile(r"\balarming\b"))
        await expect(row).to_have_attribute("data-precedence", "flash")
        await expect(row.locator(".head .badge.prec-flash")).to_have_text(
            _code("lt", "precedence", "flash"))
        await expect(row.locator(".head .badge.status-exercise")).to_have_text(
            _code("lt", "status", "exercise"))
        await expect(row.locator(".freetext .text")).to_have_text(text)
        await expect(row.locator(".freetext")).to_have_attribute("lang", "be")
        await expect(row.locator(".head .operator")).to_contain_text(OPERATOR)  # who sent it
        await expect(row.locator(".freetext .untranslated")).to_contain_text(
            _ui("lt", "untranslated"))
        await expect(row.locator(".freetext b")).to_have_count(0)
        await expect(row.locator(".countdown")).to_have_attribute("data-passed", "false")
        assert await lt.page.evaluate("window.__notReloaded") is True
        await lt.screenshot("console-LT-alarm.png")

        # LT acknowledges with the keyboard: the banner's button leads to the form
        await lt.page.focus("#alarm-ack")
        await lt.page.keyboard.press("Enter")
        action = row.locator("select.ack-action")
        await expect(action).to_be_focused()
        await action.select_option("intercepting")
        note = row.locator("input.ack-note")
        await note.fill("Matu radarā")
        await note.press("Enter")
        await expect(row).to_have_attribute("data-acknowledged", "true")
        await expect(row.locator(".ack-done")).to_contain_text(
            _code("lt", "action", "intercepting"))
        await expect(banner).to_be_hidden()
        await lt.screenshot("console-LT.png")

        # BY: LT's acknowledgement arrives, with its action and note
        stages = by.page.locator(f'#outbox li[data-id="{message_id}"] tr[data-party="LT"]')
        await expect(stages).to_have_attribute("data-stage", "acknowledged")
        acked = stages.locator('td[data-stage="acknowledged"]')
        await expect(acked).to_have_attribute("data-action", "intercepting")
        await expect(acked).to_contain_text(_code("be", "action", "intercepting"))
        await expect(acked).to_contain_text("Matu radarā")
        await expect(acked.locator(".operator")).to_contain_text(OPERATOR)  # who acknowledged
        await expect(stages.locator('td[data-stage="delivered"]')).to_have_class("reached")
        await by.page.click("#tab-links")  # the links and health view, one click away
        await expect(by.page.locator("#links tr[data-link=LT]")).to_be_visible()
        await expect(by.page.locator("#latency-chart [data-series]").first).to_be_visible()
        await expect(by.page.locator("#checkpoint")).to_have_attribute("data-consistent", "true")
        await by.screenshot("console-BY.png")

        assert lt.foreign_requests() == []
        assert by.foreign_requests() == []
        assert lt.errors == [], lt.requests
        assert by.errors == [], by.requests


def _hostile_warning(author: Author, now: int) -> WarningBody:
    base = author.warning(sender="BY", to=("LT",), ts=now)
    return replace(
        base,
        predicted=Predicted(border="BY-LT", crossing_at=now + 90_000),
        text='<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>',
        lang="ru",
    )


def _test_text(author: Author, now: int) -> TextBody:
    return replace(author.text(sender="BY", to=("LT",), ts=now), status=Status.TEST)


async def test_foreign_text_stays_text_and_the_language_choice_is_remembered(
    tmp_path: Path, browser: Browser
) -> None:
    """Markup in a message is shown as text; test traffic is marked; a chosen language sticks."""
    net = network_with_languages({"BY": "be", "LT": "lt"})
    author = Author(net)
    async with lone_endpoint(net, "LT", tmp_path) as lt_endpoint, console(
        browser, lt_endpoint
    ) as lt:
        now = wall_clock_ms()
        warning = _hostile_warning(author, now)
        await lt_endpoint.endpoint.received(deliver(net.seal(warning), 1))
        await lt_endpoint.endpoint.received(deliver(net.seal(_test_text(author, now + 1)), 2))

        rows = lt.page.locator("#inbox li.msg")
        await expect(rows).to_have_count(2)
        newest, older = rows.nth(0), rows.nth(1)
        await expect(newest).to_have_attribute("data-status", "test")
        await expect(newest.locator(".head .badge.status-test")).to_be_visible()
        hostile = older.locator(".freetext .text")
        await expect(hostile).to_have_text(warning.text or "")
        await expect(lt.page.locator("#inbox img, #inbox script")).to_have_count(0)
        assert await lt.page.evaluate("window.__pwned") is None

        # the countdown to the predicted crossing ticks every second
        countdown = older.locator(".countdown")
        first = await countdown.text_content()
        await expect(countdown).not_to_have_text(first or "")

        # the details name every track field with its unit, and the status again
        await older.locator(".details-toggle").click()
        details = older.locator(".details")
        await expect(details).to_be_visible()
        await expect(details.locator(".badge.status-exercise")).to_be_visible()
        await expect(details).to_contain_text(_code("lt", "source", "radar"))

        # the operator switches to Polish: codes follow, wire values do not
        await lt.page.select_option("#lang", "pl")
        await expect(lt.page.locator("html")).to_have_attribute("lang", "pl")
        await expect(older.locator(".head .badge.prec-flash")).to_have_text(
            _code("pl", "precedence", "flash"))
        await expect(older).to_have_attribute("data-precedence", "flash")
        await lt.page.reload()
        await expect(lt.page.locator("body")).to_have_attribute("data-ready", "true")
        await expect(lt.page.locator("#lang")).to_have_value("pl")
        await expect(lt.page.locator("#compose-h")).to_have_text(_ui("pl", "compose"))

        # a bad value is shown next to its field, as the API names it
        await lt.page.check("#to-BY")
        await lt.page.fill("#f-lat", "95")
        await lt.page.fill("#f-lon", "25")
        await lt.page.click("#f-send")
        error = lt.page.locator('.field[data-field="track.lat"] .error')
        await expect(error).to_have_text(re.compile("-90"))
        await expect(lt.page.locator("#f-lat")).to_be_focused()

        assert lt.foreign_requests() == []
        refused_post = re.compile(r"Failed to load resource: .* status of 422")
        assert [e for e in lt.errors if not refused_post.search(e)] == []


async def _outbox(endpoint: RunningEndpoint) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        headers = await operator_headers(http, endpoint.url)
        async with http.get(endpoint.url + "/api/outbox", headers=headers) as r:
            data: dict[str, Any] = await r.json()
    messages: list[dict[str, Any]] = data["messages"]
    return messages


async def test_update_cancel_and_text_are_composed_in_wire_codes(
    tmp_path: Path, browser: Browser
) -> None:
    """In Polish, the form still posts wire codes: an update and a cancel of a sent warning."""
    net = network_with_languages({"BY": "be", "LT": "lt"})
    async with lone_endpoint(net, "LT", tmp_path) as lt_endpoint, console(
        browser, lt_endpoint
    ) as lt:
        page = lt.page
        await page.select_option("#lang", "pl")
        await expect(page.locator("html")).to_have_attribute("lang", "pl")
        await page.check("#to-BY")
        await page.select_option("#f-status", "test")
        await page.select_option("#f-precedence", "routine")
        await page.fill("#f-lat", "54.1")
        await page.fill("#f-lon", "25.2")
        await page.select_option("#f-object", "balloon")
        await page.click("#f-send")
        sent = page.locator("#outbox li.msg")
        await expect(sent).to_have_count(1)
        warning_id = await sent.first.get_attribute("data-id")

        await page.check("#t-update")
        await expect(page.locator("#f-ref option")).to_have_count(2)
        await page.select_option("#f-ref", warning_id)
        await expect(page.locator("#f-lat")).to_have_value("54.1")
        await page.fill("#f-lat", "54.2")
        await page.press("#f-lat", "Enter")
        await expect(sent).to_have_count(2)

        await page.check("#t-cancel")
        await expect(page.locator("#f-lat")).to_be_hidden()
        await page.select_option("#f-ref", warning_id)
        await page.select_option("#f-reason", "left_area")
        await page.click("#f-send")
        await expect(sent).to_have_count(3)

        await page.check("#t-text")
        await page.fill("#f-text", "Czy widzicie balon?")
        await page.select_option("#f-lang", "pl")
        await page.click("#f-send")
        await expect(sent).to_have_count(4)
        await expect(sent.first.locator(".head .badge.status-test")).to_have_text(
            _code("pl", "status", "test"))

        text, cancel, update, warning = [m["body"] for m in await _outbox(lt_endpoint)]
        assert warning["id"] == warning_id
        assert (warning["status"], warning["precedence"], warning["track"]["object"]) == (
            "test", "routine", "balloon")
        assert (update["t"], update["ref"], update["track"]["lat"]) == ("update", warning_id, 54.2)
        assert update["incident"] == warning["incident"]
        assert (cancel["t"], cancel["ref"], cancel["reason"]) == ("cancel", warning_id, "left_area")
        assert (text["t"], text["text"], text["lang"], text["to"]) == (
            "text", "Czy widzicie balon?", "pl", ["BY"])
        assert lt.foreign_requests() == []
        assert lt.errors == []


async def test_a_missed_acknowledgement_deadline_alarms_both_consoles(
    tmp_path: Path, browser: Browser
) -> None:
    """An unacknowledged flash past its deadline is an overdue alarm on sender and recipient."""
    net = network_with_languages({"BY": "en", "LT": "en"})
    deadlines = {**net.network.deadlines, Precedence.FLASH: Deadline(5_000, 1_000)}
    net = replace(net, network=replace(net.network, deadlines=deadlines))
    async with (
        network_running(net, tmp_path, ("BY", "LT")) as (_, endpoints),
        console(browser, endpoints["LT"]) as lt,
        console(browser, endpoints["BY"]) as by,
        aiohttp.ClientSession() as http,
    ):
        async with http.post(endpoints["BY"].url + "/api/messages", json={
            "t": "text", "to": ["LT"], "status": "actual", "precedence": "flash",
            "text": "Call me on the line", "lang": "en",
        }, headers=await operator_headers(http, endpoints["BY"].url)) as posted:
            assert posted.status == 202
            message_id = (await posted.json())["id"]
        row = lt.page.locator(f'#inbox li[data-id="{message_id}"]')
        note = row.locator("input.ack-note")
        await note.fill("typing while the deadline passes")  # focus stays through re-renders
        for side in (lt, by):
            banner = side.page.locator("#system-banner")
            await expect(banner).to_be_visible()
            await expect(banner).to_contain_text(_code("en", "event", "overdue"))
            await expect(side.page.locator("#alarms li[data-event=overdue]").first).to_be_attached()
        await expect(row.locator(".head")).to_contain_text(_ui("en", "ack_overdue"))
        await expect(note).to_be_focused()
        await expect(note).to_have_value("typing while the deadline passes")
        late = by.page.locator(
            f'#outbox li[data-id="{message_id}"] tr[data-party="LT"] td[data-stage="acknowledged"]')
        await expect(late).to_have_class("overdue")
        await by.page.click("#tab-links")  # the alarm list is in the links and health view
        await expect(by.page.locator("#alarms li[data-event=overdue]").first).to_be_visible()
        await by.page.click("#tab-outbox")
        await by.screenshot("console-BY-overdue.png")
        await by.page.click("#system-seen")
        await expect(by.page.locator("#system-banner")).to_be_hidden()
        assert lt.errors == []
        assert by.errors == []
        assert lt.foreign_requests() == []
        assert by.foreign_requests() == []


async def test_an_inconsistent_checkpoint_is_a_red_alarm(tmp_path: Path, browser: Browser) -> None:
    """A checkpoint contradicting the one held turns the panel red and raises a system alarm."""
    net = network_with_languages({"BY": "be", "LT": "en"})
    async with lone_endpoint(net, "LT", tmp_path) as lt_endpoint, console(
        browser, lt_endpoint
    ) as lt:
        await expect(lt.page.locator("#checkpoint")).to_have_attribute("data-consistent", "unknown")
        lt_endpoint.endpoint.hub.publish(CheckpointInconsistent(
            size=12, root=b"\x01" * 32, note=b"", held_size=10, held_root=b"\x02" * 32,
            reason="the consistency proof does not verify", received_ms=wall_clock_ms(),
        ))
        await expect(lt.page.locator("#checkpoint")).to_have_attribute("data-consistent", "false")
        await expect(lt.page.locator("#checkpoint-verdict")).to_contain_text(
            "the consistency proof does not verify")
        await expect(lt.page.locator("#checkpoint-size")).to_have_text("12")
        banner = lt.page.locator("#system-banner")
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text(_code("en", "event", "checkpoint_inconsistent"))
        assert lt.errors == []


async def test_the_relay_caught_out_is_a_named_alarm_in_the_console(
    tmp_path: Path, browser: Browser
) -> None:
    """A split view raised by the guard shows in the alarm list, named and with its evidence."""
    net = network_with_languages({"BY": "be", "LT": "en"})
    async with lone_endpoint(net, "LT", tmp_path) as lt_endpoint, console(
        browser, lt_endpoint
    ) as lt:
        sentence = "BY signed that it saw the relay's tree at size 40; we hold size 41"
        lt_endpoint.endpoint.hub.publish(RelaySuspected(
            AlarmKind.SPLIT_VIEW, sentence, wall_clock_ms(), party="BY",
            evidence=(("their_size", 40), ("our_size", 41)),
        ))
        banner = lt.page.locator("#system-banner")
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text(_code("en", "event", "split_view"))
        await expect(lt.page.locator("#alarms")).to_contain_text(sentence)
        assert lt.errors == []


async def test_with_two_relays_the_links_view_shows_every_link_once_per_relay(
    tmp_path: Path, browser: Browser
) -> None:
    """Each relay's hop and each peer's link per relay are rows, and a channel alarm is named."""
    base = network_with_languages({"BY": "be", "LT": "en", "PL": "pl"})
    osce_key = seeded_key("osce")
    relays = {
        "relay": replace(base.network.relay, url=f"ws://127.0.0.1:{closed_port()}/v1/ws",
                         operator="by"),
        "osce": RelayInfo("osce", "hotline.test/osce", f"ws://127.0.0.1:{closed_port()}/v1/ws",
                          osce_key.public, operator="osce"),
    }
    network = replace(base.network, relays=relays, relay=relays["relay"])
    config = EndpointConfig(network=network, endpoint_id="LT", key=base.keys["LT"],
                            data_dir=tmp_path / "LT")
    add_operator(config.data_dir)
    async with serve_endpoint(config) as endpoint, console(browser, endpoint) as lt:
        await lt.page.click("#tab-links")
        for relay in ("relay", "osce"):
            await expect(lt.page.locator(
                f"#links tr[data-link=relay][data-relay={relay}]")).to_be_visible()
            for peer in ("BY", "PL"):
                row = lt.page.locator(f"#links tr[data-link={peer}][data-relay={relay}]")
                await expect(row).to_contain_text(f"LT → {peer}")
                await expect(row).to_contain_text(relay)
        sentence = "relay osce never delivered it: BY's message reached us over relay relay"
        endpoint.endpoint.hub.publish(RelaySuspected(
            AlarmKind.CHANNEL_WITHHELD, sentence, wall_clock_ms(), party="BY", relay="osce",
        ))
        await expect(lt.page.locator("#system-banner")).to_contain_text(
            _code("en", "event", "channel_withheld"))
        await expect(lt.page.locator("#alarms")).to_contain_text(sentence)
        assert lt.errors == []
