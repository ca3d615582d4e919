"""The seam between the relay and where its log entries become durable.

The relay (``hotline.relay.server``) keeps one :class:`~hotline.auditlog.log.AuditLog`
open in its data directory: it signs checkpoints over it and serves tiles and
proofs from it. What differs is how the entries the core asks for get into it,
and whether other writers add entries too. A :class:`LogBackend` is that part;
two implement it:

- :class:`EmbeddedLog` (here): the relay's own file store. Each append is
  written and fsynced by the log's group committer, which hands the results
  back in the order the appends were asked for, so every accepted receipt and
  every forward follows a durable append. Never shared. Ready unless a write
  failed: then every append not yet durable is reported failed, in order, and
  the backend is not ready until the store takes writes again (see
  :meth:`EmbeddedLog.open`).
- :class:`~hotline.relay.replica.Replica`: a JetStream stream shared with other
  relay replicas, mirrored into the same file store; entries other replicas
  log arrive in log order too.

The relay drives its backend (``open``, ``append``, ``close``, readiness) and
the backend reports back only through the relay's :class:`LogSink` methods,
never through the relay's private state.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import deque
from dataclasses import dataclass
from typing import Final, Protocol

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
        """Another replica logged ``entry`` at ``index`` (already in the local file store),
        or an append reported failed turned out durable when the store recovered:
        apply it; its envelope or event, or None if this relay cannot use it."""

    def superseded(self, append: Append) -> None:
        """Another replica logged the same envelope first (already followed): answer the
        sender of ``append`` with the original receipt."""

    def withdrawn(self, append: Append) -> None:
        """``append`` (a link test) will not be logged."""

    def failed(self, append: Append, error: str, *, why: str = ...) -> None:
        """``append`` could not be made durable (``error`` says why) and is not in the log:
        forget it and answer whoever waits on it ``busy``, telling them ``why`` (the store
        failed a write, unless said otherwise); reported in order with ``logged``."""

    def log_unready(self, reason: str) -> None:
        """The backend cannot log now: sessions are closed so their endpoints fail over."""

    @property
    def last_test_seq(self) -> int:
        """The highest ``seq`` of a link test signed or seen logged."""

    def sender_seqs(self) -> dict[str, int]:
        """Each sender's ``seq`` of its last envelope in the log (at start: nothing in flight)."""

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


RECOVERY_WAIT_S: Final = (0.05, 5.0)
"""After a failed write, the first and the longest pause between tries to recover the store."""


@dataclass(slots=True)
class _Queued:
    """An append asked for, and once known its outcome: its index or why it failed."""

    append: Append
    outcome: int | BaseException | None = None


class EmbeddedLog:
    """The relay's own file store as its log backend: one writer, ready unless a write failed.

    Completions (``logged`` and ``failed``) reach the sink in the order the appends
    were asked for, whether an append failed in the group committer or was refused
    at once. A failed write stops the store (its state after the failure is not
    known); the backend then reports every append not yet durable as failed, is
    not ready (the relay answers ``busy``), and tries again and again, with a
    growing pause, to recover the store (a torn tail is cut: see
    :meth:`hotline.auditlog.log.AuditLog.recover`). Entries the recovered store holds
    beyond what was reported logged (a write that failed after its entries were
    durable) are handed to the sink as ``followed``, so nothing durable is unknown
    to the relay; then it is ready again.
    """

    name = ""
    shared = False

    def __init__(self, audit_log: AuditLog, sink: LogSink) -> None:
        self._log = audit_log
        self._sink = sink
        self._queued: deque[_Queued] = deque()
        self._reporting = False
        self._drained = asyncio.Event()
        self._drained.set()
        self._failure = ""  # why the store stopped taking writes, until it recovers
        self._known = audit_log.size  # entries the relay knows of: restored or reported logged
        self._recovery: asyncio.Task[None] | None = None
        self._resuming: asyncio.Future[None] | None = None  # the store's recovery under way
        self._closing = False

    @property
    def ready(self) -> bool:
        return not self._failure

    @property
    def not_ready_reason(self) -> str:
        if not self._failure:
            return ""
        return f"the log store failed a write and is recovering ({self._failure})"

    async def open(self) -> None:
        """Nothing to start: the log's group committer hands each result back in order."""
        self._known = self._log.size

    def append(self, append: Append) -> None:
        queued = _Queued(append)
        self._queued.append(queued)
        self._drained.clear()
        try:
            self._log.append_then(append.entry, functools.partial(self._done, queued))
        except HotlineError as exc:
            queued.outcome = exc  # reported after every append asked for before it
            self._report()

    async def close(self, timeout_s: float = 5.0) -> None:
        """Wait for every append asked for to complete (durable or failed); stop recovering.

        A file append either completes or fails on its own, so ``timeout_s`` is not needed.
        """
        self._closing = True
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
        if self._resuming is not None:  # its thread goes on: the store is closed after it
            with contextlib.suppress(Exception):
                await self._resuming
        while self._queued:  # a completion may ask for more appends: wait for those too
            await self._drained.wait()

    def health(self) -> dict[str, object]:
        return {}

    def _done(self, queued: _Queued, outcome: int | BaseException) -> None:
        """Called by the group committer in the order the appends were queued there."""
        queued.outcome = outcome
        self._report()

    def _report(self) -> None:
        """Hand the sink every outcome at the head of the queue, in the order asked for."""
        if self._reporting:
            return  # a sink call asked for an append that failed at once: the loop below has it
        self._reporting = True
        try:
            while self._queued and self._queued[0].outcome is not None:
                queued = self._queued.popleft()
                outcome = queued.outcome
                assert outcome is not None
                try:
                    if isinstance(outcome, BaseException):
                        self._failed(queued.append, outcome)
                    else:
                        self._known = max(self._known, outcome + 1)
                        self._sink.logged(queued.append, outcome)
                except Exception:  # logged: one report's fault must not stop the others
                    log.exception("append_report_failed", token=queued.append.token)
        finally:
            self._reporting = False
            if not self._queued:  # after the sink: it may have asked for more
                self._drained.set()

    def _failed(self, append: Append, exc: BaseException) -> None:
        error = exc.describe() if isinstance(exc, HotlineError) else repr(exc)
        log.error("append_failed", error=error, token=append.token)
        stopped = self._log.committer.failure
        if stopped and not self._failure and not self._closing:
            self._failure = stopped
            log.error("log_store_stopped", reason=stopped)
            self._recovery = asyncio.get_running_loop().create_task(
                self._recover(), name="log-store-recovery"
            )
        self._sink.failed(append, error)

    async def _recover(self) -> None:
        """Try to make the store take writes again until it does (see the class docstring)."""
        wait, tries = RECOVERY_WAIT_S[0], 0
        while True:
            await self._drained.wait()  # every append of the stopped committer is reported
            tries += 1
            try:
                self._resuming = asyncio.ensure_future(self._log.recover())
                await asyncio.shield(self._resuming)  # close() waits for it if cancelled
                # from here to ready nothing awaits, so no append comes between: the entries
                # found are exactly those the failed writes left durable
                size = self._log.size
                found = self._log.store.read_range(self._known, size) if size > self._known else []
                break
            except Exception as exc:  # noqa: BLE001 - logged; tried again after the pause
                error = exc.describe() if isinstance(exc, HotlineError) else repr(exc)
                log.warning("log_store_recovery_failed", error=error, tries=tries,
                            retry_in_s=wait)
            await asyncio.sleep(wait)
            wait = min(2 * wait, RECOVERY_WAIT_S[1])
        self._log.resume()  # before the sink is told: applying an entry may ask for appends
        if found:  # durable although reported failed (at most one batch): the relay applies them
            log.warning("log_entries_found_durable", first=self._known, size=size)
        for index, entry in enumerate(found, self._known):
            try:
                self._sink.followed(index, entry)
            except Exception:  # logged: one entry's fault must not keep the relay unready
                log.exception("append_report_failed", index=index)
        self._known = max(self._known, size)
        self._failure = ""
        self._recovery = None
        log.info("log_store_recovered", size=size, tries=tries)
