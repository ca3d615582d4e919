"""``GroupCommitter``: many concurrent appends, few fsyncs.

Every ``append`` from the event loop queues its entry and waits. One writer
task takes what has queued (at most ``max_batch`` entries) and hands it to
``store.append_batch`` in a dedicated worker thread, so the event loop never
blocks on a write or an fsync. Whatever arrives meanwhile queues for the next
batch. The busier the log, the more records share one fsync; ``stats`` counts
them (for the file store each batch is one fsync of the active segment).

Rules the committer keeps:

- Queue order is index order: an ``append`` call queues its entry before it
  first yields, so on a store of size ``s`` the ``n``-th call (from 0) gets
  index ``s + n``. A store shared with other writers (``IndexedAppend``)
  hands back each entry's own index instead: rising, maybe not consecutive.
- A caller learns its index only after ``append_batch`` returned, that is,
  after its entry is durable.
- A failed batch fails its callers, and then the committer. If
  ``append_batch`` raises, every caller of that batch gets that exception.
  Since a store's state after a failed write is unknown (the bytes may even be
  on disk: a failed fsync does not say they are not), the committer stops:
  entries still queued, and every later ``append``, get a ``StoreError`` that
  names the first failure (``failure``). To go on, recover or reopen the store
  and make a new committer (``AuditLog.recover`` and ``resume`` do both).
- Cancelling an ``append`` does not withdraw its entry: once queued it is
  written, and only its index is lost to the cancelled caller.
- ``append_then`` is ``append`` without a coroutine or a future per entry: its
  callback is called with the index (or the exception) by the writer itself,
  in queue order, right after the batch holding the entry is durable. A busy
  caller that handles each result in order (the relay) saves a task and a
  wake-up per entry.
- ``close()`` refuses new appends, waits until every queued entry is written
  (or failed), and stops the worker thread. It does not close the store.

The committer belongs to one event loop; the store to one committer.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

import structlog

from hotline.auditlog.store import IndexedAppend, LogStore, check_entry
from hotline.errors import StoreError, UsageError

__all__ = ["DEFAULT_MAX_BATCH", "CommitStats", "Done", "GroupCommitter"]

DEFAULT_MAX_BATCH: Final = 1024
"""Entries per ``append_batch`` at most: bounds one write's size and one batch's latency."""

_log = structlog.get_logger()

Done = Callable[[int | BaseException], None]
"""Told an entry's index once it is durable, or the exception that stopped it."""


@dataclass(frozen=True, slots=True)
class CommitStats:
    """How the committer has batched so far."""

    batches: int
    """Successful ``append_batch`` calls."""
    records: int
    """Entries those batches wrote."""
    largest_batch: int

    @property
    def records_per_batch(self) -> float:
        """Mean entries per batch, i.e. per fsync for the file store (0 before any)."""
        return self.records / self.batches if self.batches else 0.0


class GroupCommitter:
    """Batch concurrent ``append`` calls into ``store.append_batch`` calls off the loop."""

    def __init__(self, store: LogStore, *, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        if max_batch < 1:
            raise UsageError(f"max_batch must be at least 1, not {max_batch}")
        self._store: Final = store
        # a runtime-checked Protocol costs µs an isinstance: asked once, not per batch
        self._indexed: Final = store if isinstance(store, IndexedAppend) else None
        self._max_batch: Final = max_batch
        self._queue: deque[tuple[bytes, asyncio.Future[int] | Done]] = deque()
        self._arrived = asyncio.Event()
        self._executor: Final = ThreadPoolExecutor(max_workers=1, thread_name_prefix="log-store")
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._failure = ""
        self._batches = 0
        self._records = 0
        self._largest = 0

    @property
    def failure(self) -> str:
        """What stopped the committer (its first failed batch), or "" while it runs."""
        return self._failure

    @property
    def stats(self) -> CommitStats:
        return CommitStats(self._batches, self._records, self._largest)

    async def append(self, entry: bytes) -> int:
        """Append ``entry``; return its index once it is durable."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._enqueue(entry, future)
        return await future

    def append_then(self, entry: bytes, done: Done) -> None:
        """Queue ``entry``; ``done`` gets its index once it is durable (or the exception).

        Refusals (closed, stopped, a bad entry) raise here, before anything is queued.
        """
        self._enqueue(entry, done)

    def _enqueue(self, entry: bytes, waiter: asyncio.Future[int] | Done) -> None:
        if self._closing:
            raise UsageError("the group committer is closed; no more entries can be appended")
        if self._failure:
            raise self._stopped()
        check_entry(entry)
        self._queue.append((entry, waiter))
        if not self._arrived.is_set():
            self._arrived.set()
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(
                self._write_batches(), name="group-commit"
            )

    async def close(self) -> None:
        """Refuse new appends, write every queued entry, stop the worker thread."""
        self._closing = True
        if self._writer is not None:
            self._arrived.set()
            await self._writer
        self._executor.shutdown(wait=False)

    async def _write_batches(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._arrived.clear()
                await self._arrived.wait()
                continue
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), self._max_batch))]
            entries = [entry for entry, _ in batch]
            try:
                indexes = await loop.run_in_executor(self._executor, self._append, entries)
            except asyncio.CancelledError:
                self._stop(batch, StoreError(self._describe(batch, "was cancelled")))
                raise
            except Exception as exc:  # noqa: BLE001 - any failure goes to the batch's callers
                self._stop(batch, exc)
                return
            self._batches += 1
            self._records += len(batch)
            self._largest = max(self._largest, len(batch))
            for index, (_, waiter) in zip(indexes, batch, strict=True):
                _settle(waiter, index)

    def _append(self, entries: list[bytes]) -> list[int]:
        """Each entry's index: its own from a shared store, else consecutive from the first."""
        if self._indexed is not None:
            return self._indexed.append_each(entries)
        first = self._store.append_batch(entries)
        return list(range(first, first + len(entries)))

    def _describe(self, batch: list[tuple[bytes, asyncio.Future[int] | Done]], what: str) -> str:
        return f"appending a batch of {len(batch)} entries {what}"

    def _stop(
        self, batch: list[tuple[bytes, asyncio.Future[int] | Done]], error: BaseException
    ) -> None:
        """Fail ``batch`` with ``error``, and everything queued behind it with a StoreError."""
        self._failure = self._describe(batch, f"failed ({type(error).__name__}: {error})")
        _log.error(
            "group_commit_failed", batch=len(batch), queued=len(self._queue), error=str(error)
        )
        for _, waiter in batch:
            _settle(waiter, error)
        while self._queue:
            _, waiter = self._queue.popleft()
            stopped = self._stopped()
            stopped.__cause__ = error
            _settle(waiter, stopped)

    def _stopped(self) -> StoreError:
        return StoreError(
            f"the entry was not appended: the group committer stopped after {self._failure}; "
            "reopen the store to go on"
        )


def _settle(waiter: asyncio.Future[int] | Done, outcome: int | BaseException) -> None:
    """Hand ``outcome`` to an ``append`` (its future) or an ``append_then`` (its callback)."""
    if isinstance(waiter, asyncio.Future):
        if waiter.done():
            return
        if isinstance(outcome, BaseException):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)
        return
    try:
        waiter(outcome)
    except Exception:  # noqa: BLE001 - one caller's failure must not stop the others
        _log.exception("append_callback_failed")
