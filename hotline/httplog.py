"""The HTTP server library's error lines, as throttled ``http_request_failed`` events.

aiohttp logs every request it cannot parse (a bad header, a second request with a
bad method) at error level with a traceback, on the stdlib logger
``aiohttp.server``. Nothing configures stdlib logging, so Python writes each one
to stderr as plain text, outside the JSON log and outside any throttle: anyone who
reaches a listening port could write lines at will. A server given
:func:`server_logger` (``AppRunner(..., logger=...)``) logs them as one structured
event instead, through a :class:`~hotline.lograte.LogThrottle`: a request that was
no HTTP at warning level with the parser's reason, any other failure at error level
with its traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from aiohttp.http_exceptions import HttpProcessingError

from hotline.lograte import LogThrottle

__all__ = ["LineBudget", "server_logger"]

log = structlog.get_logger("hotline.http")

_EVENT = "http_request_failed"
_MOST = 300
"""Characters of the library's reason kept (it may quote what the peer sent)."""


@dataclass(frozen=True, slots=True)
class LineBudget:
    """A server's throttle for events anyone who reaches its port can repeat, and its clock."""

    lines: LogThrottle
    clock: Callable[[], int]

    def admit(self, event: str, peer: str | None = None) -> dict[str, object] | None:
        """None to hold this line of ``event`` (from ``peer``, if named) back (it is
        counted); else the fields to add to it (``suppressed``: how many were held back
        before it, when any were)."""
        return self.lines.fields(event, self.clock(), peer)


class _Throttled(logging.Handler):
    def __init__(self, lines: LogThrottle, clock: Callable[[], int]) -> None:
        super().__init__(logging.WARNING)
        self._lines = lines
        self._clock = clock

    def emit(self, record: logging.LogRecord) -> None:
        fields = self._lines.fields(_EVENT, self._clock())
        if fields is None:
            return
        fields["reason"] = record.getMessage()[:_MOST]
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or isinstance(exc, HttpProcessingError):
            if exc is not None:
                fields["error"] = f"{type(exc).__name__}: {exc}"[:_MOST]
            log.warning(_EVENT, **fields)
        else:
            log.error(_EVENT, exc_info=record.exc_info, **fields)


def server_logger(name: str, lines: LogThrottle, clock: Callable[[], int]) -> logging.Logger:
    """A logger of its own (not in the stdlib's tree, so nothing else writes its lines)
    whose warnings and errors become throttled ``http_request_failed`` events."""
    logger = logging.Logger(name, logging.WARNING)
    logger.addHandler(_Throttled(lines, clock))
    return logger
