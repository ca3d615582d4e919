"""The seam between the relay and where its log entries become durable.

The relay (``hotline.relay.server``) keeps one :class:`~hotline.auditlog.log.AuditLog`
open in its data directory: it signs checkpoints over it and serves tiles and
proofs from it. What differs is how the entries the core asks for get into it,
and whether other writers add entries too. A :class:`LogBackend` is that part;
two implement it:

- :class:`EmbeddedLog` (here): the relay's own file store. Each append is
  written and fsynced by the log's group committer, which hands the results
  back in the order the appends were asked for, so every accepted receipt and
  every forward follows a durable append. Always ready; never shared.
- :class:`~hotline.relay.replica.Replica`: a JetStream stream shared with other
  relay replicas, mirrored into the same file store; entries other replicas
  log arrive in log order too.

The relay drives its backend (``open``, ``append``, ``close``, readiness) and
the backend reports back only through the relay's :class:`LogSink` methods,
never through the relay's private state.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Protocol

import structlog

from hotline.auditlog.leaf import LogEvent
from hotline.auditlog.log import AuditLog
from hotline.errors import HotlineError
from hotline.protocol.envelope import Envelope
from hotline.relay.core import Append

__all__ = ["EmbeddedLog", "LogBackend", "LogSink"]

log = structlog.get_logger()


class LogSink(Protocol):
    """What a log backend tells the relay (the relay implements it)."""

    def logged(self, append: Append, index: int) -> None:
        """An append the relay asked for is durable at ``index``: complete it."""

    def followed(self, index: int, entry: bytes) -> Envelope | LogEvent | None:
        """Another replica logged ``entry`` at ``index`` (already in the local file store):
        apply it; its envelope or event, or None if this relay cannot use it."""

    def superseded(self, append: Append) -> None:
        """Another replica logged the same envelope first (already followed): answer the
        sender of ``append`` with the original receipt."""

    def withdrawn(self, append: Append) -> None:
        """``append`` (a link test) will not be logged."""

    def log_unready(self, reason: str) -> None:
        """The backend cannot log now: sessions are closed so their endpoints fail over."""

    @property
    def last_test_seq(self) -> int:
        """The highest ``seq`` of a link test signed or seen logged."""

    def test_slot_start(self, party: str, ts: int) -> int:
        """When ``party``'s link-test slot holding ``ts`` started (ms), the same everywhere."""


class LogBackend(Protocol):
    """Where the relay's appends become durable (see the module docstring)."""

    @property
    def name(self) -> str:
        """A replica's name, written into its own events; "" for the relay's own store."""

    @property
    def shared(self) -> bool:
        """Whether other replicas write to the log too (their entries arrive later)."""

    @property
    def ready(self) -> bool:
        """Whether what is accepted now can be logged."""

    @property
    def not_ready_reason(self) -> str:
        """Why not ready, or ""."""

    async def open(self) -> None:
        """Start, and catch up with entries others logged (bounded)."""

    def append(self, append: Append) -> None:
        """Queue ``append``; :meth:`LogSink.logged` completes it once it is durable."""

    async def close(self, timeout_s: float = 5.0) -> None:
        """Log what is queued (bounded by ``timeout_s``), then stop."""

    def health(self) -> dict[str, object]:
        """Fields for ``/healthz`` naming where the log is written."""


class EmbeddedLog:
    """The relay's own file store as its log backend: one writer, always ready."""

    name = ""
    shared = False
    ready = True
    not_ready_reason = ""

    def __init__(self, audit_log: AuditLog, sink: LogSink) -> None:
        self._log = audit_log
        self._sink = sink
        self._pending = 0
        self._drained = asyncio.Event()
        self._drained.set()

    async def open(self) -> None:
        """Nothing to start: the log's group committer hands each result back in order."""

    def append(self, append: Append) -> None:
        try:
            self._log.append_then(append.entry, functools.partial(self._done, append))
        except HotlineError as exc:
            log.exception("append_failed", error=exc.describe())
            return
        self._pending += 1
        self._drained.clear()

    async def close(self, timeout_s: float = 5.0) -> None:
        """Wait for every append asked for to complete (durable or failed).

        A file append either completes or fails on its own, so ``timeout_s`` is not needed.
        """
        while self._pending:  # a completion may ask for more appends: wait for those too
            await self._drained.wait()

    def health(self) -> dict[str, object]:
        return {}

    def _done(self, append: Append, outcome: int | BaseException) -> None:
        """Called by the group committer in the order the appends were asked for."""
        self._pending -= 1
        try:
            if isinstance(outcome, BaseException):
                error = outcome.describe() if isinstance(outcome, HotlineError) else repr(outcome)
                log.error("append_failed", error=error)
                return
            self._sink.logged(append, outcome)
        finally:
            if self._pending == 0:  # after the sink: it may have asked for more
                self._drained.set()
