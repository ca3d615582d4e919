"""The endpoint serves the console from package data, strictly, with nothing from outside."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from hotline.endpoint.console_routes import CONTENT_SECURITY_POLICY
from hotline.endpoint.service import RunningEndpoint
from hotline.network import DEFAULT_DEADLINES, LANGUAGES
from hotline.protocol.vocab import Precedence
from tests.console.files import CONSOLE, read_text, shipped_texts
from tests.console.running import lone_endpoint, network_with_languages

TIMEOUT = aiohttp.ClientTimeout(total=10)


@pytest.fixture
async def lt(tmp_path: Path) -> AsyncIterator[RunningEndpoint]:
    net = network_with_languages({"BY": "be", "LT": "lt", "PL": "pl"})
    async with lone_endpoint(net, "LT", tmp_path) as running:
        yield running


async def _get(url: str) -> tuple[int, str, dict[str, str], bytes]:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http, http.get(url) as response:
        body = await response.read()
        return response.status, response.content_type, dict(response.headers), body


@pytest.mark.parametrize(
    ("path", "content_type", "source"),
    [
        ("/", "text/html", "index.html"),
        ("/console/index.html", "text/html", "index.html"),
        ("/console/console.js", "text/javascript", "console.js"),
        ("/console/console.css", "text/css", "console.css"),
        ("/console/login.js", "text/javascript", "login.js"),
        ("/console/login.css", "text/css", "login.css"),
        ("/console/icon.png", "image/png", "icon.png"),
    ],
)
async def test_page_and_assets_load_with_their_type_and_the_strict_policy(
    lt: RunningEndpoint, path: str, content_type: str, source: str
) -> None:
    """Each asset is served as shipped, typed (text as UTF-8), no-sniff, under a 'self' CSP."""
    status, ctype, headers, body = await _get(lt.url + path)
    assert (status, ctype) == (200, content_type)
    if content_type.startswith("text/"):
        assert headers["Content-Type"].endswith("charset=utf-8")
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert body == CONSOLE.joinpath(source).read_bytes()


def test_the_policy_allows_only_this_origin() -> None:
    """Every fetch directive of the CSP is 'self' or 'none': no hosts, no inline, no eval."""
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'self'"
    for name, value in directives.items():
        assert value in ("'self'", "'none'"), f"{name} {value}"


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_every_catalogue_is_served_as_json(lt: RunningEndpoint, lang: str) -> None:
    """/console/i18n/<lang>.json is the shipped catalogue, as application/json."""
    status, ctype, headers, body = await _get(f"{lt.url}/console/i18n/{lang}.json")
    assert (status, ctype) == (200, "application/json")
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert json.loads(body)["meta"]["lang"] == lang


async def test_config_names_the_endpoint_its_language_and_its_peers(lt: RunningEndpoint) -> None:
    """/console/config.json gives who we are, our configured language, our linked peers and
    how long a peer may be offline before an alarm (the flash delivery deadline)."""
    status, ctype, _, body = await _get(lt.url + "/console/config.json")
    assert (status, ctype) == (200, "application/json")
    assert json.loads(body) == {
        "endpoint": "LT", "language": "lt", "languages": list(LANGUAGES), "peers": ["BY", "PL"],
        "offline_alarm_ms": DEFAULT_DEADLINES[Precedence.FLASH].delivered_ms,
    }


@pytest.mark.parametrize(
    "path",
    [
        "/console/",
        "/console/nothing.js",
        "/console/config.toml",
        "/console/i18n/xx.json",
        "/console/i18n/en.js",
        "/console/%2e%2e/service.py",
        "/console/i18n/%2e%2e%2fconsole.js",
        "/console/..%2fapi.py",
    ],
)
async def test_nothing_but_the_listed_files_is_reachable(lt: RunningEndpoint, path: str) -> None:
    """Unknown names and path tricks under /console/ are 404, never a file of the package."""
    status, _, _, _ = await _get(lt.url + path)
    assert status == 404


@pytest.mark.parametrize(("name", "text"), sorted(shipped_texts().items()))
def test_nothing_shipped_refers_to_another_host(name: str, text: str) -> None:
    """No asset or catalogue names an http:// or https:// address (or a protocol-relative one)."""
    assert "http://" not in text.lower(), name
    assert "https://" not in text.lower(), name
    assert not re.search(r"""(?:src|href|url)\s*[=(]\s*["']?//""", text), name


def test_the_page_has_no_inline_script_style_or_handlers() -> None:
    """index.html loads script and style only from files, so the strict CSP blocks nothing."""
    html = read_text("index.html")
    assert re.findall(r"<script\b[^>]*>", html) == [
        '<script src="/console/login.js" defer>', '<script src="/console/console.js" defer>']
    assert re.findall(r"<link\b[^>]*>", html) == [
        '<link rel="icon" type="image/png" href="/console/icon.png">',
        '<link rel="stylesheet" href="/console/console.css">',
        '<link rel="stylesheet" href="/console/login.css">',
    ]
    assert "<style" not in html
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)


def test_the_script_never_writes_markup() -> None:
    """The scripts set no innerHTML/outerHTML, call no document.write nor insertAdjacentHTML."""
    js = read_text("console.js") + read_text("login.js")
    for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert forbidden not in js, forbidden
