"""RFC 9162 §2.1 Merkle tree hashing, proofs and their verification, pure.

Leaf hash ``SHA-256(0x00 || entry)``, node hash ``SHA-256(0x01 || left || right)``;
a tree of n > 1 leaves splits at the largest power of two smaller than n, and the
empty tree hashes to ``SHA-256("")``.

Invariants this module keeps:

- Proof generation never touches leaves itself. It asks a :class:`SubtreeHasher`
  for ``MTH(D[start:end])`` of O(log n) ranges, and every range it asks for is a
  node of the tree: ``start`` is a multiple of the largest power of two not above
  ``end - start``, and either ``end - start`` is a power of two or ``end`` is the
  tree size. A store can therefore answer from hashes it has kept.
- Proofs are lists of 32-byte hashes ordered from the leaf (or the old tree) up
  to the root, exactly RFC 9162's ``PATH`` and ``PROOF``.
- Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 literally, and is strict:
  it first checks that the proof has exactly the length the tree parameters call
  for, rejects impossible parameters (an index outside the tree, a consistency
  proof from the empty tree or towards a smaller one), ends by checking that the
  size counter ran down to zero, and names expected and actual values in every
  :class:`~hotline.errors.ProofError` it raises.
- An inclusion proof does not pin the tree size on its own: the size and the root
  must come from the same signed checkpoint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final, Protocol

from hotline.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "ListHasher",
    "SubtreeHasher",
    "consistency_proof",
    "consistency_ranges",
    "inclusion_proof",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves (iterative, no recursion)."""
    frontier = Frontier()
    for h in leaf_hashes:
        frontier.append(h)
    return frontier.root()


class Frontier:
    """The right edge of a growing tree: one perfect-subtree hash per set bit of ``size``.

    ``append`` is amortised O(1); ``root`` is O(log size). The frontier is all a
    log needs to keep to extend its tree and compute the current root.
    """

    __slots__ = ("_hashes", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != size.bit_count():
            raise ValueError(
                f"a frontier of size {size} holds {size.bit_count()} hashes, not {len(hashes)}"
            )
        self.size = size
        # _hashes[0] is the leftmost (largest) perfect subtree.
        self._hashes: list[bytes] = list(hashes)

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash."""
        h = leaf
        n = self.size
        while n & 1:
            h = node_hash(self._hashes.pop(), h)
            n >>= 1
        self._hashes.append(h)
        self.size += 1

    def root(self) -> bytes:
        if not self._hashes:
            return EMPTY_ROOT
        h = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            h = node_hash(left, h)
        return h

    def copy(self) -> Frontier:
        return Frontier(self.size, self._hashes)


class SubtreeHasher(Protocol):
    """Answers ``MTH(D[start:end])``, the Merkle tree hash of leaves ``start`` to ``end - 1``."""

    def __call__(self, start: int, end: int, /) -> bytes: ...


class ListHasher:
    """A :class:`SubtreeHasher` over an in-memory sequence of leaf hashes.

    Hashes of perfect subtrees (a power-of-two number of leaves) are cached. Such
    a hash never changes once its leaves exist, so the cache stays right if the
    caller appends to the sequence it passed in; it must not alter or remove leaves.
    """

    __slots__ = ("_cache", "_leaves")

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        self._leaves: Final = leaf_hashes
        self._cache: dict[tuple[int, int], bytes] = {}

    def __call__(self, start: int, end: int, /) -> bytes:
        if not 0 <= start <= end <= len(self._leaves):
            raise ProofError(
                f"leaf range [{start}, {end}) lies outside a tree of {len(self._leaves)} leaves"
            )
        if start == end:
            return EMPTY_ROOT
        return self._hash(start, end)

    def _hash(self, start: int, end: int) -> bytes:
        count = end - start
        if count == 1:
            return self._leaves[start]
        perfect = count & (count - 1) == 0
        if perfect:
            cached = self._cache.get((start, end))
            if cached is not None:
                return cached
        middle = start + _split(count)
        h = node_hash(self._hash(start, middle), self._hash(middle, end))
        if perfect:
            self._cache[(start, end)] = h
        return h


def _split(count: int) -> int:
    """The largest power of two strictly smaller than ``count`` (which is at least 2)."""
    return 1 << ((count - 1).bit_length() - 1)


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes make up ``PATH(index, D[size])``, leaf side first."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        middle = lo + _split(hi - lo)
        if index < middle:
            ranges.append((middle, hi))
            hi = middle
        else:
            ranges.append((lo, middle))
            lo = middle
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes make up ``PROOF(old_size, D[new_size])``, old side first.

    Equal sizes need no hashes; a proof from the empty tree is refused, as it
    would prove nothing.
    """
    if old_size <= 0:
        raise ProofError(
            f"a consistency proof needs an old tree of at least one leaf, not {old_size}"
        )
    if old_size > new_size:
        raise ProofError(
            f"a tree of size {old_size} cannot grow into a smaller tree of size {new_size}"
        )
    ranges: list[tuple[int, int]] = []
    lo, hi, old = 0, new_size, old_size
    whole_old_tree = True  # RFC 9162's flag b: still on the path of the old root
    while True:
        count = hi - lo
        if old == count:
            if not whole_old_tree:
                ranges.append((lo, hi))
            break
        middle = lo + _split(count)
        if old <= middle - lo:
            ranges.append((middle, hi))
            hi = middle
        else:
            ranges.append((lo, middle))
            old -= middle - lo
            lo = middle
            whole_old_tree = False
    ranges.reverse()
    return ranges


def inclusion_proof(index: int, size: int, subtree: SubtreeHasher) -> list[bytes]:
    """``PATH(index, D[size])``: the audit path of leaf ``index`` in the tree of ``size`` leaves."""
    return [subtree(start, end) for start, end in inclusion_ranges(index, size)]


def consistency_proof(old_size: int, new_size: int, subtree: SubtreeHasher) -> list[bytes]:
    """``PROOF(old_size, D[new_size])``: hashes showing the old tree is a prefix of the new."""
    return [subtree(start, end) for start, end in consistency_ranges(old_size, new_size)]


def _check_hash(what: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, expected {HASH_SIZE}")


def _check_proof_hashes(kind: str, proof: Sequence[bytes], expected: int) -> None:
    if len(proof) != expected:
        raise ProofError(f"{kind} proof has {len(proof)} hashes, expected {expected}")
    for position, h in enumerate(proof):
        _check_hash(f"{kind} proof hash {position}", h)


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` implies for leaf hash ``leaf`` at ``index`` (RFC 9162 §2.1.3.2)."""
    _check_hash("leaf hash", leaf)
    _check_proof_hashes("inclusion", proof, len(inclusion_ranges(index, size)))
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ProofError(f"inclusion proof is longer than the path to leaf {index}")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion proof is shorter than the path to leaf {index}")
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf hash ``leaf`` sits at ``index`` in the tree of ``size`` leaves and ``root``.

    Raises :class:`~hotline.errors.ProofError` naming what did not match.
    """
    _check_hash("root hash", root)
    computed = root_from_inclusion_proof(leaf, index, size, proof)
    if computed != root:
        raise ProofError(
            f"inclusion proof for leaf {index} gives root {computed.hex()}, "
            f"but the tree of size {size} has root {root.hex()}"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree ``(old_size, old_root)`` is a prefix of ``(new_size, new_root)``.

    Follows RFC 9162 §2.1.4.2; equal sizes need an empty proof and equal roots.
    Raises :class:`~hotline.errors.ProofError` naming what did not match.
    """
    _check_hash("old root hash", old_root)
    _check_hash("new root hash", new_root)
    _check_proof_hashes("consistency", proof, len(consistency_ranges(old_size, new_size)))
    if old_size == new_size:
        if old_root != new_root:
            raise ProofError(
                f"two trees of the same size {old_size} have different roots "
                f"{old_root.hex()} and {new_root.hex()}"
            )
        return
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof from size {old_size} to {new_size} is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof from size {old_size} to {new_size} is too short")
    if fr != old_root:
        raise ProofError(
            f"consistency proof gives old root {fr.hex()}, "
            f"but the tree of size {old_size} has root {old_root.hex()}"
        )
    if sr != new_root:
        raise ProofError(
            f"consistency proof gives new root {sr.hex()}, "
            f"but the tree of size {new_size} has root {new_root.hex()}"
        )
