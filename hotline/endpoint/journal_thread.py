"""The journal off the event loop: every call runs on one dedicated thread, in order.

One thread means calls are serialised in the order they were made, so a batch
of events recorded before another is on disk before it, and SQLite's
connection is only ever used from the thread that opened it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from hotline.endpoint.events import EndpointEvent
from hotline.endpoint.journal import Journal

__all__ = ["ThreadedJournal"]

T = TypeVar("T")


class ThreadedJournal:
    """A :class:`Journal` whose blocking calls are awaited from the event loop."""

    def __init__(self, journal: Journal, executor: ThreadPoolExecutor) -> None:
        self._journal = journal
        self._executor = executor

    @classmethod
    async def open(cls, path: Path, *, initial_seq: int = 1) -> ThreadedJournal:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        loop = asyncio.get_running_loop()
        try:
            journal = await loop.run_in_executor(
                executor, lambda: Journal.open(path, initial_seq=initial_seq)
            )
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(journal, executor)

    async def call(self, query: Callable[[Journal], T]) -> T:
        """Run ``query(journal)`` on the journal's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, query, self._journal)

    async def record(self, events: Iterable[EndpointEvent]) -> None:
        batch = tuple(events)
        if batch:
            await self.call(lambda journal: journal.record(batch))

    async def close(self) -> None:
        await self.call(Journal.close)
        self._executor.shutdown(wait=True)
