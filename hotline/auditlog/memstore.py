"""``MemoryStore``: the ``LogStore`` contract kept in RAM, for tests and demos.

It keeps the entries and the same stored hash levels as the file store
(``hotline.auditlog.hashlevels``), so a subtree hash is computed the same way.
"Durable" means "in this object": nothing survives the process.

Invariants: ``len(entries) == size``; level ``L`` holds ``size // W**L`` hashes;
an append either happens whole or not at all (the batch is checked first).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from hotline.auditlog import hashlevels
from hotline.auditlog.merkle import Frontier, leaf_hash
from hotline.auditlog.store import (
    TILE_HEIGHT,
    check_batch,
    check_index,
    check_range,
    check_subtree,
    check_tile_height,
)
from hotline.errors import UsageError

__all__ = ["MemoryStore"]


class MemoryStore:
    """Entries and hash levels in lists; passes the ``LogStore`` contract tests."""

    def __init__(self, *, tile_height: int = TILE_HEIGHT) -> None:
        check_tile_height(tile_height)
        self.tile_height: Final = tile_height
        self._entries: list[bytes] = []
        self._levels: list[list[bytes]] = [[]]
        self._builder = hashlevels.LevelBuilder(tile_height)
        self._frontier = Frontier()
        self._closed = False

    @property
    def size(self) -> int:
        return len(self._entries)

    def append_batch(self, entries: Sequence[bytes]) -> int:
        self._check_open()
        check_batch(entries)
        first = len(self._entries)
        frontier = self._frontier.copy()
        for entry in entries:
            digest = leaf_hash(entry)
            frontier.append(digest)
            self._levels[0].append(digest)
            for level, node in self._builder.add(digest):
                if level == len(self._levels):
                    self._levels.append([])
                self._levels[level].append(node)
        self._frontier = frontier
        self._entries.extend(entries)
        return first

    def read(self, index: int) -> bytes:
        self._check_open()
        check_index(index, self.size)
        return self._entries[index]

    def read_range(self, start: int, stop: int) -> list[bytes]:
        self._check_open()
        check_range(start, stop, self.size)
        return self._entries[start:stop]

    def leaf_hash(self, index: int) -> bytes:
        self._check_open()
        check_index(index, self.size)
        return self._levels[0][index]

    def subtree_hash(self, start: int, end: int) -> bytes:
        self._check_open()
        check_subtree(start, end, self.size)
        return hashlevels.subtree_hash(self, start, end, self.tile_height)

    def frontier(self) -> Frontier:
        self._check_open()
        return self._frontier.copy()

    def close(self) -> None:
        self._closed = True

    def stored_hashes(self, level: int, start: int, stop: int) -> list[bytes]:
        """``hashlevels.LevelReader``: entries ``[start, stop)`` of one stored level."""
        return self._levels[level][start:stop]

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError("the memory log store is closed")
