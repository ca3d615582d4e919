"""The seam between the audit log and its storage: one ``LogStore`` protocol.

A log store holds an append-only sequence of opaque entries (the audit log puts
MessagePack ``[kind, relay_ts, payload]`` in them) and the RFC 9162 Merkle tree
over them. Two implementations pass the same contract tests:
``hotline.auditlog.memstore.MemoryStore`` (RAM) and
``hotline.auditlog.filestore.FileStore`` (segment files on disk).

Invariants every store keeps:

- Entry ``i`` is the ``i``-th entry ever appended; indexes are consecutive from 0
  and an entry never changes once ``append_batch`` has returned its index.
- ``size`` counts durable entries only: ``append_batch`` makes the whole batch
  durable before it returns and before ``size`` grows.
- An entry is ``bytes`` of at most ``MAX_ENTRY_SIZE`` bytes, so that it fits a
  C2SP tlog-tiles entry bundle (a big-endian uint16 length per entry).
- ``subtree_hash(start, end)`` is ``MTH(D[start:end])``; ``frontier()`` is the
  right edge of the tree of all ``size`` entries, and its ``root()`` is the
  tree head.

Threading: one writer (the group committer's worker thread, or a store's
``recover`` once that committer has stopped) plus any number of readers of
indexes below a ``size`` they have already seen. Nothing else.

Misuse (an empty batch, an oversized entry, an index out of range, a closed
store) raises ``UsageError``; a store found damaged raises ``StoreError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol, runtime_checkable

from hotline.auditlog.merkle import Frontier
from hotline.auditlog.tiles import MAX_ENTRY_SIZE, TILE_HEIGHT
from hotline.errors import UsageError

__all__ = [
    "MAX_ENTRY_SIZE",
    "TILE_HEIGHT",
    "IndexedAppend",
    "LogStore",
    "Recoverable",
    "check_batch",
    "check_entry",
    "check_index",
    "check_range",
    "check_subtree",
    "check_tile_height",
]

# The largest entry (an entry bundle writes each length as a uint16) and log2 of
# the tile width are the tlog-tiles format's, defined once in tiles.py.

_MAX_TILE_HEIGHT: Final = 16


class LogStore(Protocol):
    """Durable, append-only entries and the Merkle tree over them."""

    @property
    def size(self) -> int:
        """The number of durable entries."""
        ...

    def append_batch(self, entries: Sequence[bytes]) -> int:
        """Append ``entries`` and make them durable; return the index of the first."""
        ...

    def read(self, index: int) -> bytes:
        """The exact bytes of entry ``index``."""
        ...

    def read_range(self, start: int, stop: int) -> list[bytes]:
        """Entries ``start`` up to but excluding ``stop``."""
        ...

    def leaf_hash(self, index: int) -> bytes:
        """``SHA-256(0x00 || entry)`` of entry ``index``."""
        ...

    def subtree_hash(self, start: int, end: int) -> bytes:
        """``MTH(D[start:end])`` for ``0 <= start <= end <= size``."""
        ...

    def frontier(self) -> Frontier:
        """A copy of the tree's right edge at ``size``."""
        ...

    def close(self) -> None:
        """Release the store; later calls raise ``UsageError``. Idempotent."""
        ...


@runtime_checkable
class IndexedAppend(Protocol):
    """A store shared by several writers: one writer's batch need not be contiguous.

    ``append_each`` makes the entries durable and returns each one's own index
    (increasing, not necessarily consecutive). The group committer uses it
    when a store offers it (``hotline.auditlog.natsstore.NatsStore`` does).
    """

    def append_each(self, entries: Sequence[bytes]) -> list[int]: ...


@runtime_checkable
class Recoverable(Protocol):
    """A store that refuses writes after a failed one until it is recovered in place.

    ``recover`` makes the store take writes again, consistent with what it
    counted as durable (a tail the failed write left is cut), or raises
    ``StoreError`` and keeps refusing. A store without it needs no recovery.
    """

    def recover(self) -> None: ...


def _entry_fault(entry: object) -> str:
    """What makes ``entry`` unfit for the log, or "" if nothing does."""
    if not isinstance(entry, bytes):
        return f"is {type(entry).__name__}, not bytes"
    if len(entry) > MAX_ENTRY_SIZE:
        return f"is {len(entry):,} bytes; the log takes at most {MAX_ENTRY_SIZE:,} bytes per entry"
    return ""


def check_entry(entry: bytes) -> None:
    """Refuse an entry no store may hold: not bytes, or too large."""
    if fault := _entry_fault(entry):
        raise UsageError(f"the entry {fault}")


def check_batch(entries: Sequence[bytes]) -> None:
    """Refuse a batch no store may append: empty, or holding an entry ``check_entry`` refuses."""
    if not entries:
        raise UsageError("an empty batch cannot be appended: give at least one entry")
    for position, entry in enumerate(entries):
        if fault := _entry_fault(entry):
            raise UsageError(f"entry {position} of the batch {fault}")


def check_index(index: int, size: int) -> None:
    """Refuse an index that names no durable entry."""
    if not 0 <= index < size:
        raise UsageError(f"entry {index} does not exist: the log holds {size} entries")


def check_range(start: int, stop: int, size: int) -> None:
    """Refuse a half-open range ``[start, stop)`` that is not inside ``[0, size)``."""
    if not 0 <= start <= stop <= size:
        raise UsageError(f"entries [{start}, {stop}) are not a range of the log's {size} entries")


def check_subtree(start: int, end: int, size: int) -> None:
    """Refuse a subtree ``[start, end)`` that is not inside the tree of ``size`` leaves."""
    if not 0 <= start <= end <= size:
        raise UsageError(f"leaves [{start}, {end}) are not a subtree of the tree of {size} leaves")


def check_tile_height(tile_height: int) -> None:
    """Refuse a tile height other stored hash levels cannot be built with."""
    if not 1 <= tile_height <= _MAX_TILE_HEIGHT:
        raise UsageError(
            f"tile height {tile_height} is outside 1..{_MAX_TILE_HEIGHT} "
            f"(C2SP tlog-tiles uses {TILE_HEIGHT})"
        )
