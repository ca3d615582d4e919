"""structlog set-up: JSON lines on stderr, one event per state change.

Event names are stable snake_case past-tense noun phrases (``envelope_rejected``,
``checkpoint_signed``); details are keys, never formatted into the name.
"""

from __future__ import annotations

import logging
import sys

import structlog

__all__ = ["configure_logging"]


class _Stderr:
    """Writes each rendered event to whatever ``sys.stderr`` is at that moment."""

    def msg(self, message: str) -> None:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _stderr_logger(*_args: object) -> _Stderr:
    return _Stderr()


def configure_logging(
    *, verbose: bool = False, json: bool = True, level: int | None = None
) -> None:
    """Route structlog events to stderr as JSON lines (or a console format)."""
    if level is None:
        level = logging.DEBUG if verbose else logging.INFO
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
