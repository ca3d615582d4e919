"""Logging in to an endpoint's API from a program (``hotline send``, the demo's officers).

:func:`log_in` posts ``/api/login`` and gives back the headers every later
request must carry: the session cookie (sent by hand, as aiohttp's cookie jar
keeps no cookies of IP addresses such as 127.0.0.1) and ``X-Hotline-CSRF``.
"""

from __future__ import annotations

import aiohttp

from hotline.endpoint.access import CSRF_HEADER
from hotline.errors import UsageError

__all__ = ["log_in"]


async def log_in(
    http: aiohttp.ClientSession, api: str, name: str, password: str
) -> dict[str, str]:
    """The headers of ``name``'s new session at ``api``. Raises UsageError if refused."""
    async with http.post(api.rstrip("/") + "/api/login",
                         json={"name": name, "password": password}) as response:
        answer = await response.json(content_type=None)
        if response.status != 200 or not isinstance(answer, dict):
            detail = answer.get("detail") if isinstance(answer, dict) else answer
            raise UsageError(f"{api} refused the login of {name!r}: {detail}")
        cookies = [f"{morsel.key}={morsel.value}" for morsel in response.cookies.values()]
    return {"Cookie": "; ".join(cookies), CSRF_HEADER: str(answer["csrf"])}
