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

from hotline.endpoint.login_client import log_in
from hotline.endpoint.operators import OperatorStore, Role

__all__ = ["OPERATOR", "PASSWORD", "add_operator", "operator_headers"]

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
