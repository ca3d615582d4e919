"""Stored hash levels of a Merkle tree, and any subtree hash computed from them.

With tile height ``h`` (8 for C2SP tlog-tiles, so ``W = 2**h = 256``), a log of
``size`` leaves stores one list of hashes per level ``L``:

- level 0 holds the leaf hashes, one per entry;
- entry ``k`` of level ``L`` is ``MTH(D[k * W**L : (k + 1) * W**L])``, the hash of
  the ``k``-th complete, aligned run of ``W**L`` leaves.

Invariants: level ``L`` holds exactly ``size // W**L`` hashes, and entry ``k`` of
level ``L + 1`` is the perfect-tree root of level-``L`` entries
``[k * W, (k + 1) * W)``. These are exactly the hashes of tlog-tiles: tile
``L/N`` is level-``L`` entries ``[N * W, (N + 1) * W)``.

``subtree_hash`` reads at most ``W - 1`` stored hashes per level (in one call
per level) for a range whose start is a multiple of the largest power of two
not above its length; that covers every subtree a consistency or inclusion
proof asks for. Any other range is split the RFC 9162 way until its pieces are
aligned, or hashed from its leaf hashes when it is short.

Pure: no I/O here. A store supplies the stored hashes through ``LevelReader``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol

from hotline.auditlog.merkle import EMPTY_ROOT, Frontier, node_hash, root_of

__all__ = ["LevelBuilder", "LevelReader", "frontier_from_levels", "perfect_root", "subtree_hash"]

_SMALL_UNALIGNED: Final = 512
"""An unaligned range up to this many leaves is hashed from its leaf hashes in one read."""


class LevelReader(Protocol):
    """Stored hashes of one level: entries ``[start, stop)`` of level ``level``."""

    def stored_hashes(self, level: int, start: int, stop: int) -> list[bytes]: ...


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """The root of a perfect tree over ``hashes`` (their count is a power of two)."""
    count = len(hashes)
    if count == 0 or count & (count - 1):
        raise ValueError(f"a perfect tree has a power-of-two number of leaves, not {count}")
    layer = list(hashes)
    while len(layer) > 1:
        layer = [node_hash(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
    return layer[0]


def _aligned_pieces(reader: LevelReader, start: int, count: int, height: int) -> list[bytes]:
    """Perfect-subtree hashes, largest first, covering ``count`` leaves from ``start``.

    ``start`` must be a multiple of the largest power of two in ``count``, so
    that every piece is a node of the log's own tree.
    """
    width_mask = (1 << height) - 1
    top = (count.bit_length() - 1) // height if count else -1
    pieces: list[bytes] = []
    position = start
    for level in range(top, -1, -1):
        shift = height * level
        units = (count >> shift) & width_mask
        if not units:
            continue
        first = position >> shift
        hashes = reader.stored_hashes(level, first, first + units)
        offset = 0
        for bit in range(height - 1, -1, -1):
            span = 1 << bit
            if units & span:
                pieces.append(perfect_root(hashes[offset : offset + span]))
                offset += span
        position += units << shift
    return pieces


def _fold(pieces: Sequence[bytes]) -> bytes:
    """Combine perfect-subtree hashes (largest, leftmost first) into one root."""
    result = pieces[-1]
    for left in reversed(pieces[:-1]):
        result = node_hash(left, result)
    return result


def subtree_hash(reader: LevelReader, start: int, end: int, height: int) -> bytes:
    """``MTH(D[start:end])`` from stored hashes. The caller has checked the bounds."""
    count = end - start
    if count <= 0:
        return EMPTY_ROOT
    largest = 1 << (count.bit_length() - 1)
    if start % largest == 0:
        return _fold(_aligned_pieces(reader, start, count, height))
    if count <= _SMALL_UNALIGNED:
        return root_of(reader.stored_hashes(0, start, end))
    split = 1 << ((count - 1).bit_length() - 1)
    return node_hash(
        subtree_hash(reader, start, start + split, height),
        subtree_hash(reader, start + split, end, height),
    )


def frontier_from_levels(reader: LevelReader, size: int, height: int) -> Frontier:
    """The tree's right edge at ``size``, read from at most ``W - 1`` hashes per level."""
    return Frontier(size, _aligned_pieces(reader, 0, size, height))


class LevelBuilder:
    """The incomplete right edge of every level, to extend the levels leaf by leaf.

    ``pending[L]`` holds the level-``L`` hashes of the level-``L + 1`` entry not
    yet complete (fewer than ``W``). Memory is ``W - 1`` hashes per level, however
    long the log.
    """

    __slots__ = ("_pending", "_width", "height")

    def __init__(self, height: int, pending: Sequence[Sequence[bytes]] = ()) -> None:
        self.height: Final = height
        self._width: Final = 1 << height
        self._pending: list[list[bytes]] = [list(level) for level in pending]

    @classmethod
    def load(cls, reader: LevelReader, size: int, height: int) -> LevelBuilder:
        """Rebuild the pending hashes of a log of ``size`` leaves from its stored levels."""
        pending: list[list[bytes]] = []
        level = 0
        while size >> (height * level):
            stored = size >> (height * level)
            first = stored >> height << height
            pending.append(reader.stored_hashes(level, first, stored))
            level += 1
        return cls(height, pending)

    def copy(self) -> LevelBuilder:
        return LevelBuilder(self.height, self._pending)

    def add(self, leaf: bytes) -> list[tuple[int, bytes]]:
        """Take one leaf hash; return the ``(level, hash)`` entries it completes above 0."""
        completed: list[tuple[int, bytes]] = []
        digest = leaf
        level = 0
        while True:
            if level == len(self._pending):
                self._pending.append([])
            run = self._pending[level]
            run.append(digest)
            if len(run) < self._width:
                return completed
            digest = perfect_root(run)
            run.clear()
            level += 1
            completed.append((level, digest))
