"""The typed keys under which the endpoint's aiohttp application holds what it runs.

Route modules (``api``, ``feed_routes``, ``cap_routes``, ``console_routes``) read the
:class:`~hotline.endpoint.service.Endpoint` through :data:`ENDPOINT` from here,
and the :class:`~hotline.endpoint.feed_service.FeedService` through :data:`FEEDS`;
they never import :mod:`hotline.endpoint.service`, which imports them to build
the application, so the import graph has no cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from aiohttp import web

if TYPE_CHECKING:
    from hotline.endpoint.feed_service import FeedService
    from hotline.endpoint.service import Endpoint
    from hotline.httplog import LineBudget

__all__ = ["ENDPOINT", "FEEDS", "LOG_LINES"]

ENDPOINT: Final[web.AppKey[Endpoint]] = web.AppKey("endpoint")
FEEDS: Final[web.AppKey[FeedService]] = web.AppKey("feeds")
LOG_LINES: Final[web.AppKey[LineBudget]] = web.AppKey("log_lines")
"""Lines of events anyone who reaches the API can repeat (a refused login, a post with no
feed's token, a failed TLS handshake, a malformed request): throttled (hotline.httplog)."""
