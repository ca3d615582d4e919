"""GroupCommitter: concurrent appends share batches, and an index means durable."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import structlog.testing

from hotline.auditlog.filestore import FileStore
from hotline.auditlog.groupcommit import GroupCommitter
from hotline.auditlog.memstore import MemoryStore
from hotline.auditlog.merkle import Frontier
from hotline.auditlog.store import MAX_ENTRY_SIZE
from hotline.errors import StoreError, UsageError
from tests.auditlog_store.crash_child import entry_for

TIMEOUT = 10.0


class GatedStore:
    """A MemoryStore whose append_batch waits for ``release`` and records what it saw."""

    def __init__(self, *, gated: bool = True, error: Exception | None = None) -> None:
        self.inner = MemoryStore()
        self.entered = threading.Event()
        self.release = threading.Event()
        if not gated:
            self.release.set()
        self.error = error
        self.batches: list[int] = []
        self.threads: set[int] = set()
        self.returned = 0

    @property
    def size(self) -> int:
        return self.inner.size

    def append_batch(self, entries: Sequence[bytes]) -> int:
        self.threads.add(threading.get_ident())
        self.batches.append(len(entries))
        self.entered.set()
        if not self.release.wait(TIMEOUT):
            raise TimeoutError("the test never released the batch")
        if self.error is not None:
            raise self.error
        first = self.inner.append_batch(entries)
        self.returned += 1
        return first

    def read(self, index: int) -> bytes:
        return self.inner.read(index)

    def read_range(self, start: int, stop: int) -> list[bytes]:
        return self.inner.read_range(start, stop)

    def leaf_hash(self, index: int) -> bytes:
        return self.inner.leaf_hash(index)

    def subtree_hash(self, start: int, end: int) -> bytes:
        return self.inner.subtree_hash(start, end)

    def frontier(self) -> Frontier:
        return self.inner.frontier()

    def close(self) -> None:
        self.inner.close()


async def in_flight(store: GatedStore) -> None:
    """Wait until a batch has entered the store's append_batch."""
    assert await asyncio.to_thread(store.entered.wait, TIMEOUT)


async def let_queued_tasks_run() -> None:
    """Yield once, so every task already scheduled runs up to its first await."""
    await asyncio.sleep(0)


async def test_concurrent_appends_get_consecutive_indexes_in_fewer_batches(
    tmp_path: Path,
) -> None:
    """200 concurrent appends to a FileStore get indexes 0..199, in fewer than 200 batches."""
    with FileStore(tmp_path / "log") as store:
        committer = GroupCommitter(store)
        indexes = await asyncio.wait_for(
            asyncio.gather(*(committer.append(entry_for(i)) for i in range(200))), TIMEOUT
        )
        await committer.close()
        assert sorted(indexes) == list(range(200))
        assert all(store.read(index) == entry_for(i) for i, index in enumerate(indexes))
        assert committer.stats.records == 200
        assert committer.stats.batches < 200
        assert committer.stats.records_per_batch > 1


async def test_an_index_is_handed_out_only_after_its_batch_returned() -> None:
    """append() does not resolve while append_batch is still running."""
    store = GatedStore()
    committer = GroupCommitter(store)
    resolved_after: list[int] = []
    task = asyncio.create_task(committer.append(b"first"))
    task.add_done_callback(lambda _: resolved_after.append(store.returned))
    await in_flight(store)
    assert not task.done()
    store.release.set()
    assert await asyncio.wait_for(task, TIMEOUT) == 0
    assert resolved_after == [1]
    await committer.close()


async def test_arrivals_during_a_batch_queue_for_the_next_one() -> None:
    """Entries appended while a batch is being written all go into the following batch."""
    store = GatedStore()
    committer = GroupCommitter(store)
    first = asyncio.create_task(committer.append(b"a"))
    await in_flight(store)
    later = [asyncio.create_task(committer.append(bytes([i]))) for i in range(10)]
    await let_queued_tasks_run()
    store.release.set()
    assert await asyncio.wait_for(asyncio.gather(first, *later), TIMEOUT) == list(range(11))
    assert store.batches == [1, 10]
    assert committer.stats.largest_batch == 10
    await committer.close()


async def test_max_batch_bounds_every_batch() -> None:
    """No batch holds more than max_batch entries."""
    store = GatedStore()
    committer = GroupCommitter(store, max_batch=4)
    first = asyncio.create_task(committer.append(b"a"))
    await in_flight(store)
    later = [asyncio.create_task(committer.append(b"b")) for _ in range(10)]
    await let_queued_tasks_run()
    store.release.set()
    await asyncio.wait_for(asyncio.gather(first, *later), TIMEOUT)
    assert store.batches == [1, 4, 4, 2]
    await committer.close()


async def test_the_store_is_written_off_the_event_loop_thread() -> None:
    """append_batch runs in a worker thread, never in the thread running the event loop."""
    store = GatedStore(gated=False)
    committer = GroupCommitter(store)
    await asyncio.wait_for(asyncio.gather(*(committer.append(b"x") for _ in range(5))), TIMEOUT)
    await committer.close()
    assert store.threads
    assert threading.get_ident() not in store.threads


async def test_a_failed_batch_fails_its_callers_and_stops_the_committer() -> None:
    """Each caller of a failed batch gets its error; queued and later appends get StoreError."""
    error = StoreError("the disk is on fire")
    store = GatedStore(error=error)
    committer = GroupCommitter(store)
    doomed = asyncio.create_task(committer.append(b"a"))
    await in_flight(store)
    queued = asyncio.create_task(committer.append(b"b"))
    await let_queued_tasks_run()
    store.release.set()
    with pytest.raises(StoreError) as failed:
        await asyncio.wait_for(doomed, TIMEOUT)
    assert failed.value is error
    with pytest.raises(StoreError, match="not appended: the group committer stopped after"):
        await asyncio.wait_for(queued, TIMEOUT)
    with pytest.raises(StoreError, match="the disk is on fire"):
        await committer.append(b"c")
    await committer.close()
    assert store.inner.size == 0


async def test_every_caller_of_a_failed_batch_gets_the_error() -> None:
    """All entries of one failed batch see the exception append_batch raised."""
    error = OSError("no space left on device")
    store = GatedStore(error=error)
    committer = GroupCommitter(store)
    tasks = [asyncio.create_task(committer.append(bytes([i]))) for i in range(3)]
    await in_flight(store)
    store.release.set()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), TIMEOUT)
    assert store.batches == [3]
    assert results == [error, error, error]
    await committer.close()


async def test_append_then_callbacks_come_in_order_once_their_batch_returned() -> None:
    """append_then's callbacks get consecutive indexes in queue order, only after the batch
    holding their entries returned, mixed with append() callers in the same batches."""
    store = GatedStore()
    committer = GroupCommitter(store)
    told: list[tuple[str, int | BaseException, int]] = []

    def done(name: str) -> Callable[[int | BaseException], None]:
        return lambda outcome: told.append((name, outcome, store.returned))

    committer.append_then(b"a", done("a"))
    await in_flight(store)
    committer.append_then(b"b", done("b"))
    awaited = asyncio.create_task(committer.append(b"c"))
    await let_queued_tasks_run()
    committer.append_then(b"d", done("d"))
    assert told == []
    store.release.set()
    assert await asyncio.wait_for(awaited, TIMEOUT) == 2
    assert told == [("a", 0, 1), ("b", 1, 2), ("d", 3, 2)]
    await committer.close()


async def test_append_then_callbacks_get_the_failure_and_later_ones_a_store_error() -> None:
    """A failed batch tells each of its callbacks the error; an entry queued behind it is told
    the committer stopped; a later append_then is refused at once, before anything queues."""
    error = OSError("no space left on device")
    store = GatedStore(error=error)
    committer = GroupCommitter(store)
    told: list[int | BaseException] = []
    committer.append_then(b"a", told.append)
    await in_flight(store)
    committer.append_then(b"b", told.append)
    store.release.set()
    await committer.close()
    assert told[0] is error
    assert isinstance(told[1], StoreError)
    assert "the group committer stopped after" in str(told[1])
    with pytest.raises(UsageError):
        committer.append_then(b"c", told.append)
    assert len(told) == 2


async def test_a_callback_that_raises_does_not_stop_the_others() -> None:
    """One append_then callback raising: the entries behind it are still told their index,
    close() still returns, and the failure is logged as append_callback_failed."""
    committer = GroupCommitter(GatedStore(gated=False))
    told: list[int | BaseException] = []

    def bad(outcome: int | BaseException) -> None:
        raise RuntimeError("a bug in the caller")

    with structlog.testing.capture_logs() as logs:
        committer.append_then(b"a", told.append)
        committer.append_then(b"b", bad)
        committer.append_then(b"c", told.append)
        await asyncio.wait_for(committer.close(), TIMEOUT)
    assert told == [0, 2]
    assert [line["event"] for line in logs] == ["append_callback_failed"]


async def test_close_writes_every_queued_entry_then_refuses_appends() -> None:
    """close() waits for queued entries to be durable; append() after close is a UsageError."""
    store = GatedStore()
    committer = GroupCommitter(store)
    tasks = [asyncio.create_task(committer.append(bytes([i]))) for i in range(6)]
    await in_flight(store)
    closing = asyncio.create_task(committer.close())
    await let_queued_tasks_run()
    assert not closing.done()
    store.release.set()
    await asyncio.wait_for(closing, TIMEOUT)
    assert all(task.done() for task in tasks)
    assert sorted(task.result() for task in tasks) == list(range(6))
    assert store.inner.size == 6
    with pytest.raises(UsageError, match="closed"):
        await committer.append(b"late")


async def test_a_cancelled_append_still_writes_its_entry() -> None:
    """Cancelling append() does not withdraw an entry already queued."""
    store = GatedStore()
    committer = GroupCommitter(store)
    first = asyncio.create_task(committer.append(b"a"))
    await in_flight(store)
    second = asyncio.create_task(committer.append(b"b"))
    await let_queued_tasks_run()
    second.cancel()
    store.release.set()
    assert await asyncio.wait_for(first, TIMEOUT) == 0
    await committer.close()
    assert second.cancelled()
    assert store.inner.read_range(0, 2) == [b"a", b"b"]


async def test_an_oversized_entry_is_refused_before_it_reaches_a_batch() -> None:
    """append() of more than 65,535 bytes raises UsageError for that caller alone."""
    store = GatedStore(gated=False)
    committer = GroupCommitter(store)
    with pytest.raises(UsageError, match="65,536 bytes"):
        await committer.append(b"x" * (MAX_ENTRY_SIZE + 1))
    assert await asyncio.wait_for(committer.append(b"fine"), TIMEOUT) == 0
    await committer.close()
    assert store.batches == [1]


def test_max_batch_below_one_is_refused() -> None:
    """GroupCommitter(max_batch=0) raises UsageError."""
    with pytest.raises(UsageError, match="max_batch"):
        GroupCommitter(MemoryStore(), max_batch=0)
