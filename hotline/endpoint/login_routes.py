"""Operator login and logout on the local API.

==========================  ================================================================
``POST /api/login``         ``{"name", "password"}`` (application/json) → ``200 {"operator",
                            "role", "csrf", "idle_s"}`` and the session cookie (``HttpOnly``,
                            ``SameSite=Strict``, ``Path=/``; under TLS ``Secure`` and named
                            ``__Host-…``); ``401 bad_credentials`` for a wrong name or
                            password (the same answer, after the same Argon2 work, for both)
``GET /api/session``        the logged-in operator: ``200 {"operator", "role", "csrf",
                            "idle_s"}``; ``200 {"operator": null}`` without a live
                            session
``POST /api/logout``        ends the session (its event streams close) → ``204``
==========================  ================================================================

Password checks run one at a time on a worker thread, so guessing costs the
guesser Argon2's memory and time and never stalls the endpoint's event loop.
"""

from __future__ import annotations

import asyncio
from typing import Final

import structlog
from aiohttp import web

from hotline.endpoint.access import ACCESS, SESSION, Access
from hotline.endpoint.appkeys import LOG_LINES
from hotline.endpoint.errors import BadJson
from hotline.endpoint.http_io import parse_json, read_body
from hotline.endpoint.sessions import Session

__all__ = ["add_login_routes", "operator_of"]

log = structlog.get_logger("hotline.endpoint.login")

_MAX_LOGIN_BYTES: Final = 4096
_VERIFYING: Final = web.AppKey("verifying", asyncio.Semaphore)


def operator_of(request: web.Request) -> str | None:
    """The name of the operator whose session the request carries (None without one)."""
    session = request.get(SESSION)
    return None if session is None else session.operator.name


def _session_json(access: Access, session: Session) -> dict[str, object]:
    return {"operator": session.operator.name, "role": session.operator.role.value,
            "csrf": session.csrf, "idle_s": access.sessions.idle_s}


def _error(status: int, error: str, field: str, detail: str) -> web.Response:
    return web.json_response({"error": error, "field": field, "detail": detail}, status=status)


async def login(request: web.Request) -> web.Response:
    access = request.app[ACCESS]
    raw = await read_body(request, _MAX_LOGIN_BYTES)
    if raw is None:
        return _error(413, "too_large", "", f"a login is at most {_MAX_LOGIN_BYTES} bytes")
    try:
        data = parse_json(raw)
    except BadJson as exc:
        return _error(400, "bad_json", "", exc.sentence)
    if not isinstance(data, dict) or set(data) != {"name", "password"}:
        return _error(422, "schema", "", 'a login is {"name": …, "password": …} and nothing else')
    name, password = data["name"], data["password"]
    if not isinstance(name, str) or not isinstance(password, str):
        return _error(422, "schema", "name", "the name and the password must be strings")
    async with request.app[_VERIFYING]:
        operator = await asyncio.to_thread(access.operators.verify, name, password)
    if operator is None:
        # anyone can repeat it: throttled, and one address cannot hide the others
        extra = request.app[LOG_LINES].admit("operator_login_refused", request.remote)
        if extra is not None:
            log.warning("operator_login_refused", operator=name[:40],
                        remote=request.remote or "", **extra)
        return _error(401, "bad_credentials", "password",
                      "no operator of this endpoint has this name and password")
    token, session = access.sessions.start(operator)
    log.info("operator_logged_in", operator=operator.name, role=operator.role.value,
             remote=request.remote or "")
    response = web.json_response(_session_json(access, session))
    response.set_cookie(access.cookie, token, path="/", httponly=True, samesite="Strict",
                        secure=access.secure)
    return response


async def current(request: web.Request) -> web.Response:
    access = request.app[ACCESS]
    session = request.get(SESSION)
    if session is None:
        return web.json_response({"operator": None})
    return web.json_response(_session_json(access, session))


async def logout(request: web.Request) -> web.Response:
    access = request.app[ACCESS]
    session: Session = request[SESSION]
    access.sessions.end(request.cookies.get(access.cookie))
    log.info("operator_logged_out", operator=session.operator.name)
    response = web.Response(status=204)
    response.del_cookie(access.cookie, path="/")
    return response


def add_login_routes(app: web.Application) -> None:
    app[_VERIFYING] = asyncio.Semaphore(1)
    app.router.add_post("/api/login", login)
    app.router.add_get("/api/session", current)
    app.router.add_post("/api/logout", logout)
