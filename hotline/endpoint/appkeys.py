"""The typed key under which the endpoint's aiohttp application holds the running endpoint.

Route modules (``api``, ``feeds``, ``cap_routes``, ``console_routes``) read the
:class:`~hotline.endpoint.service.Endpoint` through :data:`ENDPOINT` from here;
they never import :mod:`hotline.endpoint.service`, which imports them to build
the application, so the import graph has no cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from aiohttp import web

if TYPE_CHECKING:
    from hotline.endpoint.service import Endpoint

__all__ = ["ENDPOINT"]

ENDPOINT: Final[web.AppKey[Endpoint]] = web.AppKey("endpoint")
