"""structlog set-up: JSON lines on stderr, one event per state change.

Event names are stable snake_case past-tense noun phrases (``envelope_rejected``,
``checkpoint_signed``); details are keys, never formatted into the name.

Every event is one line::

    {"id": "…", "from": "BY", …, "event": "envelope_accepted", "level": "info",
     "timestamp": "2026-12-03T19:46:39.605185Z"}

The timestamp is UTC, RFC 3339, always with six digits of microseconds. The relay
logs four events per round trip, so the chain is kept short: the stamp is made from
``time.time_ns()`` with the date part reused within a second (structlog's
``TimeStamper`` builds a ``datetime`` per event), and one JSON encoder is reused.
Events logged inside :func:`one_write` reach stderr together, in order, in one write;
:func:`log_infos` writes a batch of info events so, rendering them in one pass under
the JSON set-up (the same bytes as the chain).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import structlog

__all__ = ["configure_logging", "log_infos", "one_write"]

_holding = threading.local()
"""``lines``: what this thread logged inside :func:`one_write`, not yet written (each
thread holds its own: the relay's loop and the group committer's worker both log)."""


class _Stderr:
    """Writes each rendered event to whatever ``sys.stderr`` is at that moment."""

    def msg(self, message: str) -> None:
        held: list[str] | None = getattr(_holding, "lines", None)
        if held is not None:
            held.append(message)
            return
        sys.stderr.write(message + "\n")
        sys.stderr.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _stderr_logger(*_args: object) -> _Stderr:
    return _Stderr()


@contextmanager
def one_write() -> Iterator[None]:
    """Hold this thread's events and write them to stderr in one go, in order, at the end.

    Nested uses write once, at the end of the outermost. Each thread holds its own:
    other threads' events are written as they come, or at the end of their own block.
    What was logged is written even if the block raises.
    """
    if getattr(_holding, "lines", None) is not None:
        yield
        return
    lines: list[str] = []
    _holding.lines = lines
    try:
        yield
    finally:
        _holding.lines = None
        if lines:
            sys.stderr.write("\n".join(lines) + "\n")
            sys.stderr.flush()


class _UtcStamp:
    """Adds ``timestamp``: now in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""

    def __init__(self) -> None:
        # (second, its date and time) replaced as one: threads stamp at once, and a pair
        # updated in two steps let one read a new second with the old second's text
        self._cached: tuple[int, str] = (-1, "")

    def __call__(
        self, _logger: object, _name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        second, nanos = divmod(time.time_ns(), 1_000_000_000)
        cached_second, prefix = self._cached
        if second != cached_second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._cached = (second, prefix)
        event_dict["timestamp"] = f"{prefix}.{nanos // 1000:06d}Z"
        return event_dict


def _fallback(value: object) -> object:
    """What JSON cannot hold is written as its ``repr``."""
    return repr(value)


_ENCODER = json.JSONEncoder(default=_fallback)


def _dumps(event_dict: object, **_options: object) -> str:
    return _ENCODER.encode(event_dict)


@dataclass(frozen=True, slots=True)
class _JsonSetUp:
    """What :func:`configure_logging` configured for JSON lines with ``info`` let through."""

    processors: tuple[structlog.typing.Processor, ...]
    wrapper_class: type[structlog.typing.BindableLogger]
    stamp: _UtcStamp

    def in_force(self) -> bool:
        config = structlog.get_config()  # the list's content: capture_logs edits it in place
        return (
            tuple(config["processors"]) == self.processors
            and config["wrapper_class"] is self.wrapper_class
            and config["logger_factory"] is _stderr_logger
        )


_json_set_up: _JsonSetUp | None = None


def configure_logging(
    *, verbose: bool = False, json: bool = True, level: int | None = None
) -> None:
    """Route structlog events to stderr as JSON lines (or a console format)."""
    global _json_set_up  # noqa: PLW0603 - the set-up is global in structlog too
    if level is None:
        level = logging.DEBUG if verbose else logging.INFO
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=_dumps) if json
        else structlog.dev.ConsoleRenderer()
    )
    stamp = _UtcStamp()
    processors: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level,
        stamp,
        structlog.processors.format_exc_info,
        renderer,
    ]
    wrapper_class = structlog.make_filtering_bound_logger(level)
    structlog.configure(
        processors=processors,
        wrapper_class=wrapper_class,
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    _json_set_up = (
        _JsonSetUp(tuple(processors), wrapper_class, stamp)
        if json and level <= logging.INFO else None
    )


def log_infos(notes: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
    """Log each ``(event, fields)`` at ``info``, in order, in one write to stderr.

    Each line is what ``log.info(event, **fields)`` would write. While the JSON set-up
    of :func:`configure_logging` is in force the lines are rendered here, in one pass
    (the relay logs several events per message: the processor chain's calls per event
    cost more than rendering the line); under any other set-up (a console, a test
    capturing events) every event goes through structlog as usual.
    """
    set_up = _json_set_up
    with one_write():
        if set_up is None or not set_up.in_force():
            logger = structlog.get_logger().bind()
            for event, fields in notes:
                logger.info(event, **fields)
            return
        held: list[str] = _holding.lines
        stamp = set_up.stamp
        for event, fields in notes:
            if "exc_info" in fields or "event" in fields:  # the chain's to do (or refuse)
                structlog.get_logger().info(event, **fields)
                continue
            line = dict(fields)
            line["event"] = event
            line["level"] = "info"
            held.append(_ENCODER.encode(stamp(None, "info", line)))
