"""Operators for tests, benchmarks and fault runs: one added to a data directory, logged in.

Every endpoint started by a harness gets :data:`OPERATOR` (an officer) with
:data:`PASSWORD`, through the same store ``hotline operator add`` writes, and
its API is used through :func:`operator_headers`, the same login a program
like ``hotline send`` goes through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import aiohttp

from hotline.endpoint.access import CSRF_HEADER
from hotline.endpoint.login_client import log_in
from hotline.endpoint.operators import OperatorStore, Role

__all__ = ["OPERATOR", "PASSWORD", "LoggedIn", "add_operator", "operator_headers"]

OPERATOR: Final = "officer"
PASSWORD: Final = "correct horse battery staple"  # noqa: S105  (a test fixture's password)


def add_operator(data_dir: Path, name: str = OPERATOR, role: Role = Role.OFFICER,
                 password: str = PASSWORD) -> None:
    """Let ``name`` log in to the endpoint whose data directory is ``data_dir``."""
    OperatorStore(data_dir).add(name, password, role)


async def operator_headers(http: aiohttp.ClientSession, url: str, name: str = OPERATOR,
                           password: str = PASSWORD) -> dict[str, str]:
    """Log ``name`` in at ``url``: the headers (cookie, CSRF token) of the session."""
    return await log_in(http, url, name, password)


_FEED_POSTS: Final = frozenset({"/api/alerts", "/api/cap"})


class LoggedIn:
    """An aiohttp client middleware: requests to an endpoint's operator API carry the
    session of ``name`` at that endpoint, logged in on first use and again after a 401
    (the endpoint restarted). For harnesses that talk to many endpoints through one
    ``ClientSession(middlewares=(LoggedIn(),))``; feed posts keep their bearer tokens."""

    def __init__(self, name: str = OPERATOR, password: str = PASSWORD) -> None:
        self.name = name
        self.password = password
        self._sessions: dict[str, dict[str, str]] = {}

    async def __call__(
        self, request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        path = request.url.path
        if not path.startswith("/api/") or path == "/api/login" or path in _FEED_POSTS:
            return await handler(request)
        origin = str(request.url.origin())
        if origin not in self._sessions:
            await self._log_in(request.session, origin)
        request.headers.update(self._sessions[origin])
        response = await handler(request)
        if response.status != 401:
            return response
        response.release()
        await self._log_in(request.session, origin)
        request.headers.update(self._sessions[origin])
        return await handler(request)

    async def _log_in(self, http: aiohttp.ClientSession, origin: str) -> None:
        async with http.post(origin + "/api/login", middlewares=(),
                             json={"name": self.name, "password": self.password}) as response:
            answer = await response.json(content_type=None)
            if response.status != 200:
                raise aiohttp.ClientResponseError(
                    response.request_info, (), status=response.status,
                    message=f"login as {self.name} refused: {answer}")
            cookies = "; ".join(f"{m.key}={m.value}" for m in response.cookies.values())
        self._sessions[origin] = {"Cookie": cookies, CSRF_HEADER: str(answer["csrf"])}
