"""Who may ask the endpoint's HTTP API what: Host names, cross-site requests, sessions.

One aiohttp middleware checks every request, in this order; the first refusal
answers it as ``{"error", "field", "detail"}`` and nothing else runs:

1. ``421 misdirected`` (field ``host``): the ``Host`` header names none of the
   endpoint's names (``127.0.0.1``, ``localhost``, ``::1``, the address it
   listens on, and every ``--api-name``). A page reached by DNS rebinding
   sends its own host name, so it can neither read nor post. Every route.
2. ``403 cross_site`` (field ``origin``): a request to ``/api/`` whose
   ``Origin`` is not this very origin, or whose ``Sec-Fetch-Site`` is neither
   ``same-origin`` nor ``none`` (another port on the same host is
   ``same-site``, and refused too).
3. Routes a sensor feed posts to (``POST /api/alerts``, ``POST /api/cap``) take
   its bearer token (:mod:`hotline.endpoint.feed_service`) and stop here.
4. ``401 not_authenticated``: any other ``/api/`` route without a live
   session (the cookie set by ``POST /api/login``). A ``GET`` may instead
   carry a feed's bearer token: feeds read what operators read.
5. For ``POST``: ``415 unsupported_media_type`` unless ``Content-Type`` is
   ``application/json``; ``403 csrf`` (field ``x-hotline-csrf``) unless the
   ``X-Hotline-CSRF`` header holds the session's token (only the console's
   own script can read it, from ``/api/session``); ``403 forbidden`` (field
   ``role``) for a viewer, except to log out.

``GET /``, ``/console/…`` and ``/healthz`` need no session (the login page is
part of the console), but are Host-checked like everything else.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web

from hotline.endpoint.appkeys import FEEDS
from hotline.endpoint.errors import NotAuthenticated
from hotline.endpoint.operators import OperatorStore
from hotline.endpoint.sessions import Session, SessionStore
from hotline.errors import ConfigError, PlaintextRefused
from hotline.tls import is_loopback

__all__ = [
    "ACCESS",
    "CSRF_HEADER",
    "SESSION",
    "Access",
    "access_middleware",
    "check_exposure",
    "host_names",
]

CSRF_HEADER: Final = "X-Hotline-CSRF"
FEED_POSTS: Final = frozenset({"/api/alerts", "/api/cap"})
OPEN_POSTS: Final = frozenset({"/api/login"})
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_SAME_ORIGIN: Final = frozenset({"same-origin", "none"})
_LOOPBACK_NAMES: Final = ("127.0.0.1", "localhost", "::1")


def host_names(listen_host: str, extra: Iterable[str]) -> frozenset[str]:
    """The names a request's Host may carry: loopback's, the listening address, ``extra``."""
    names = {*_LOOPBACK_NAMES, *(name.lower().strip("[]") for name in extra)}
    try:
        if not ipaddress.ip_address(listen_host.strip("[]")).is_unspecified:
            names.add(listen_host.lower().strip("[]"))
    except ValueError:
        names.add(listen_host.lower())
    return frozenset(names)


def check_exposure(host: str, tls_served: bool, operators: OperatorStore) -> None:
    """Refuse to serve the API off loopback without TLS or without an operator to log in.

    Raises PlaintextRefused or ConfigError; ``--unsafe-plaintext`` does not lift this one:
    passwords and session cookies never cross a network in clear.
    """
    if is_loopback(host):
        return
    if not tls_served:
        raise PlaintextRefused(
            f"refusing to serve the endpoint's console and API on {host}, which is not a "
            "loopback address, without TLS: operators' passwords and sessions would cross the "
            "network in clear; give --api-tls-cert and --api-tls-key, or listen on 127.0.0.1 "
            "(--unsafe-plaintext covers only the relay connection)")
    if not operators.names():
        raise ConfigError(
            f"refusing to serve the console on {host} with no operator to log in: add one "
            f"with hotline operator add --data {operators.path.parent} NAME")


def _host_name(host: str) -> str:
    """The name part of a Host header, lowercase: ``[::1]:80`` → ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        return host.partition(":")[0]
    return host.rstrip(".")


@dataclass(slots=True)
class Access:
    """What the middleware needs: our names, the operators, the sessions, the cookie."""

    names: frozenset[str]
    operators: OperatorStore
    sessions: SessionStore
    cookie: str
    secure: bool
    clock: Callable[[], float] = field(default=time.monotonic)

    def session_of(self, request: web.Request, *, touch: bool = True) -> Session | None:
        return self.sessions.find(request.cookies.get(self.cookie), touch=touch)


ACCESS: Final = web.AppKey("access", Access)
SESSION: Final = web.RequestKey("session", Session)  # the Session the middleware found


def _refuse(status: int, error: str, field: str, detail: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Cookie realm="hotline"'} if status == 401 else None
    return web.json_response({"error": error, "field": field, "detail": detail},
                             status=status, headers=headers)


def _cross_site(request: web.Request) -> str | None:
    """Why this /api/ request comes from another site, or None."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site.lower() not in _SAME_ORIGIN:
        return f"a {site} request is refused: only this endpoint's own console may use the API"
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() != f"{request.scheme}://{request.host}".lower():
        return f"requests from {origin[:100]!r} are refused: only this endpoint's own console "\
               "may use the API"
    return None


def _feed_token(request: web.Request) -> bool:
    """A GET carrying some feed's bearer token (checked against the feeds file)."""
    header = request.headers.get("Authorization")
    service = request.app.get(FEEDS)
    if header is None or service is None:
        return False
    try:
        service.authenticate(header)
    except NotAuthenticated:
        return False
    return True


def _json_only(request: web.Request) -> web.Response | None:
    if request.content_type == "application/json":
        return None
    return _refuse(415, "unsupported_media_type", "content-type",
                   "the API reads only application/json, not "
                   f"{request.content_type or 'no Content-Type'}")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    access = request.app[ACCESS]
    if _host_name(request.headers.get("Host", "")) not in access.names:
        return _refuse(421, "misdirected", "host",
                       f"this endpoint does not answer to the host name "
                       f"{request.headers.get('Host', '')[:100]!r}; add it with --api-name")
    path = request.path
    if not path.startswith("/api/"):
        return await handler(request)
    why = _cross_site(request)
    if why is not None:
        return _refuse(403, "cross_site", "origin", why)
    safe = request.method in _SAFE_METHODS
    if not safe and path in FEED_POSTS:
        return await handler(request)
    if not safe and path in OPEN_POSTS:
        return _json_only(request) or await handler(request)
    session = access.session_of(request)
    if session is None and safe and path == "/api/session":
        return await handler(request)  # answers who is logged in: nobody
    if session is None and not (safe and _feed_token(request)):
        return _refuse(401, "not_authenticated", "session",
                       "log in first: POST /api/login with an operator's name and password")
    if not safe:
        refused = _json_only(request)
        if refused is not None:
            return refused
        assert session is not None
        if not session.csrf_matches(request.headers.get(CSRF_HEADER)):
            return _refuse(403, "csrf", CSRF_HEADER.lower(),
                           f"the {CSRF_HEADER} header must carry the session's token, "
                           "as GET /api/session gives it")
        if not session.operator.role.may_send and path != "/api/logout":
            return _refuse(403, "forbidden", "role",
                           f"{session.operator.name} is a viewer: a viewer reads, "
                           "but does not send or acknowledge")
    if session is not None:
        request[SESSION] = session
    return await handler(request)
