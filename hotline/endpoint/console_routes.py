"""The operator console: static files shipped in the package, and its configuration.

========================================  ============================================
``GET /``                                 the console page (``console/index.html``)
``GET /console/{name}``                   the page's script, style sheet and icon
``GET /console/i18n/{lang}.json``         a message catalogue (en, ru, be, lt, lv, et, pl)
``GET /console/config.json``              ``{endpoint, language, languages, peers,
                                          offline_alarm_ms}``: who we are, the
                                          operator's default language, the languages
                                          offered, our linked endpoints, and how long a
                                          peer may be offline before the console raises
                                          an alarm (the flash delivery deadline)
========================================  ============================================

Only the files listed in :data:`_ASSETS` and the catalogues of
:data:`~hotline.network.LANGUAGES` are served, by name, never by a path taken
from the request, so nothing else in the package can be reached. Every answer
carries a Content-Security-Policy that allows scripts, styles, fetches and the
event stream from this origin only ('self'): the page loads nothing from the
internet, and a message from another country's system cannot run as script
even if it slipped past the page's ``textContent`` discipline.
"""

from __future__ import annotations

from importlib import resources
from typing import Final

from aiohttp import web

from hotline.endpoint.appkeys import ENDPOINT
from hotline.network import LANGUAGES
from hotline.protocol.vocab import Precedence

__all__ = ["CONTENT_SECURITY_POLICY", "add_console_routes"]

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

_ASSETS: Final[dict[str, str]] = {
    "index.html": "text/html",
    "console.css": "text/css",
    "console.js": "text/javascript",
    "login.js": "text/javascript",
    "login.css": "text/css",
    "icon.png": "image/png",
}

_HEADERS: Final[dict[str, str]] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
    "X-Frame-Options": "DENY",
}


def _read(*parts: str) -> bytes:
    return resources.files("hotline.endpoint").joinpath("console", *parts).read_bytes()


def _file(content_type: str, data: bytes) -> web.Response:
    charset = None if content_type.startswith("image/") else "utf-8"
    return web.Response(body=data, content_type=content_type, charset=charset,
                        headers=_HEADERS)


async def index(request: web.Request) -> web.Response:
    return _file("text/html", _read("index.html"))


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    content_type = _ASSETS.get(name)
    if content_type is None:
        raise web.HTTPNotFound(headers=_HEADERS)
    return _file(content_type, _read(name))


async def catalogue(request: web.Request) -> web.Response:
    lang = request.match_info["lang"]
    if lang not in LANGUAGES:
        raise web.HTTPNotFound(headers=_HEADERS)
    return _file("application/json", _read("i18n", f"{lang}.json"))


async def config(request: web.Request) -> web.Response:
    endpoint = request.app[ENDPOINT]
    network = endpoint.config.network
    return web.json_response(
        {
            "endpoint": endpoint.me,
            "language": network.endpoints[endpoint.me].language,
            "languages": list(LANGUAGES),
            "peers": list(network.peers(endpoint.me)),
            "offline_alarm_ms": network.deadlines[Precedence.FLASH].delivered_ms,
        },
        headers=_HEADERS,
    )


def add_console_routes(app: web.Application) -> None:
    """Serve the console at ``/`` and its files under ``/console/``."""
    app.router.add_get("/", index)
    app.router.add_get("/console/config.json", config)
    app.router.add_get("/console/i18n/{lang}.json", catalogue)
    app.router.add_get("/console/{name}", asset)
