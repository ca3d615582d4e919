"""The console's login view in a real Chromium: the operator's language, wrong passwords,
a viewer's read-only console, and logging out."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, Page, expect

from hotline.endpoint.operators import Role
from hotline.testing.operators import add_operator
from tests.console.files import catalogue
from tests.console.running import lone_endpoint, network_with_languages
from tests.console.test_browser import VIEWPORT, browser, log_in  # noqa: F401  (the fixture)


async def test_the_login_view_speaks_the_operators_language_and_refuses_a_wrong_password(
    tmp_path: Path, browser: Browser  # noqa: F811
) -> None:
    """LT's login view is in Lithuanian; a wrong password says so there and logs nobody in;
    the right one opens the console."""
    net = network_with_languages({"BY": "be", "LT": "lt"})
    ui = catalogue("lt")["ui"]
    async with lone_endpoint(net, "LT", tmp_path) as lt:
        context = await browser.new_context(viewport=VIEWPORT)
        try:
            page = await context.new_page()
            await page.goto(lt.url + "/")
            await expect(page.locator("#login-h [data-i18n=login_title]")).to_have_text(
                ui["login_title"])
            await expect(page.locator("#login-endpoint")).to_have_text("LT")
            await expect(page.locator("body")).to_have_attribute("data-ready", "false")
            await log_in_expecting_failure(page)
            await expect(page.locator("#login-error")).to_have_text(ui["login_failed"])
            await expect(page.locator("#inbox li")).to_have_count(0)
            await log_in(page)
            await expect(page.locator("body")).to_have_attribute("data-ready", "true")
            await expect(page.locator("#operator-name")).to_have_text("officer")
        finally:
            await context.close()


async def log_in_expecting_failure(page: Page) -> None:
    """Submit the login view with the officer's name and a wrong password."""
    await page.fill("#login-name", "officer")
    await page.fill("#login-password", "not the password")
    await page.press("#login-password", "Enter")


async def test_a_viewer_has_no_compose_form_and_logging_out_asks_again(
    tmp_path: Path, browser: Browser  # noqa: F811
) -> None:
    """A viewer sees the console without the compose form or acknowledgement forms; after
    logout the page asks for a password and the old session reads nothing."""
    net = network_with_languages({"BY": "en", "LT": "en"})
    add_operator(tmp_path / "LT", "watcher", Role.VIEWER)
    async with lone_endpoint(net, "LT", tmp_path) as lt:
        context = await browser.new_context(viewport=VIEWPORT)
        try:
            page = await context.new_page()
            await page.goto(lt.url + "/")
            await log_in(page, "watcher")
            await expect(page.locator("body")).to_have_attribute("data-role", "viewer")
            await expect(page.locator("#compose-section")).to_be_hidden()
            await expect(page.locator("#viewer-note")).to_be_visible()
            await page.click("#logout")
            await expect(page.locator("#login")).to_be_visible()
            answer = await page.evaluate(
                "fetch('/api/inbox').then((r) => r.status)")
            assert answer == 401
        finally:
            await context.close()
