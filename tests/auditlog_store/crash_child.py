"""A child process for the crash test: append through a GroupCommitter until killed.

Usage: ``python -m tests.auditlog_store.crash_child DIRECTORY WORKERS``

Each of WORKERS tasks appends ``entry_for(i)`` for the index ``i`` its call will
get (queue order is index order), and prints ``i`` on stdout, flushed, once
``append`` returned it, that is, once the entry is durable. Store events go to
stderr so that stdout holds nothing but acknowledged indexes.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from pathlib import Path
from typing import Final

import structlog

from hotline.auditlog.filestore import FileStore
from hotline.auditlog.groupcommit import GroupCommitter

SEGMENT_BYTES: Final = 16 * 1024
PERSIST_ENTRIES: Final = 200
MAX_BATCH: Final = 64
_WRONG_INDEX_EXIT: Final = 3


def entry_for(index: int) -> bytes:
    """The entry that belongs at ``index``: 32 to 288 bytes, a function of the index only."""
    return hashlib.sha256(index.to_bytes(8, "big")).digest() * (1 + index % 9)


async def append_forever(directory: Path, workers: int) -> None:
    store = FileStore(directory, segment_bytes=SEGMENT_BYTES, persist_entries=PERSIST_ENTRIES)
    committer = GroupCommitter(store, max_batch=MAX_BATCH)
    next_index = store.size

    async def worker() -> None:
        nonlocal next_index
        while True:
            expected = next_index
            next_index += 1
            index = await committer.append(entry_for(expected))
            if index != expected:
                sys.stderr.write(f"append returned {index}, expected {expected}\n")
                sys.stderr.flush()
                os._exit(_WRONG_INDEX_EXIT)
            sys.stdout.write(f"{index}\n")
            sys.stdout.flush()

    await asyncio.gather(*(worker() for _ in range(workers)))


def main() -> None:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    asyncio.run(append_forever(Path(sys.argv[1]), int(sys.argv[2])))


if __name__ == "__main__":
    main()
