"""The LogStore contract: every store (memory, file) must pass each of these."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.auditlog.filestore import FileStore
from hotline.auditlog.memstore import MemoryStore
from hotline.auditlog.merkle import EMPTY_ROOT, leaf_hash, root_of
from hotline.auditlog.store import MAX_ENTRY_SIZE, TILE_HEIGHT, LogStore
from hotline.errors import UsageError
from tests.auditlog_store.crash_child import entry_for

MakeStore = Callable[..., LogStore]


@pytest.fixture(params=["memory", "file"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeStore]:
    """A factory of empty stores of one kind; the file store gets small segments."""
    made: list[LogStore] = []
    numbers = itertools.count()

    def make(tile_height: int = TILE_HEIGHT) -> LogStore:
        store: LogStore
        if request.param == "memory":
            store = MemoryStore(tile_height=tile_height)
        else:
            store = FileStore(
                tmp_path / f"store-{next(numbers)}",
                segment_bytes=4096,
                persist_entries=100,
                tile_height=tile_height,
            )
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def fill(store: LogStore, count: int, batch: int = 23) -> list[bytes]:
    """Append entries ``entry_for(size)`` onwards in batches; return all the store's entries."""
    start = store.size
    for first in range(start, start + count, batch):
        stop = min(first + batch, start + count)
        store.append_batch([entry_for(i) for i in range(first, stop)])
    return [entry_for(i) for i in range(start + count)]


def test_appended_entries_read_back_byte_for_byte(make_store: MakeStore) -> None:
    """read(i) returns exactly the bytes appended as entry i, the empty entry included."""
    store = make_store()
    entries = [b"", b"\x00", b"hello", bytes(range(256)) * 20]
    store.append_batch(entries)
    assert [store.read(i) for i in range(len(entries))] == entries


def test_append_batch_returns_the_index_of_its_first_entry(make_store: MakeStore) -> None:
    """Batches get consecutive indexes: each returns the size before it."""
    store = make_store()
    firsts = [store.append_batch([b"x"] * n) for n in (1, 3, 1, 7, 2)]
    assert firsts == [0, 1, 4, 5, 12]
    assert store.size == 14


def test_read_range_returns_the_entries_in_order(make_store: MakeStore) -> None:
    """read_range(a, b) equals [read(a), ..., read(b - 1)], across segment boundaries."""
    store = make_store()
    entries = fill(store, 300)
    assert store.read_range(0, 300) == entries
    assert store.read_range(17, 251) == entries[17:251]
    assert store.read_range(42, 42) == []


def test_leaf_hash_is_the_rfc9162_leaf_hash(make_store: MakeStore) -> None:
    """leaf_hash(i) is SHA-256(0x00 || entry i)."""
    store = make_store()
    entries = fill(store, 40)
    assert [store.leaf_hash(i) for i in range(40)] == [leaf_hash(e) for e in entries]


def test_an_empty_store_has_the_empty_root(make_store: MakeStore) -> None:
    """A store with no entries has size 0 and root SHA-256("")."""
    store = make_store()
    assert store.size == 0
    assert store.frontier().root() == EMPTY_ROOT
    assert store.subtree_hash(0, 0) == EMPTY_ROOT


def test_root_at_every_size_matches_the_reference(make_store: MakeStore) -> None:
    """subtree_hash(0, n) and the frontier root equal merkle.root_of, across tile boundaries."""
    store = make_store()
    leaves = [leaf_hash(e) for e in fill(store, 1100, batch=97)]
    for size in [*range(600), 767, 768, 769, 1023, 1024, 1025, 1099, 1100]:
        assert store.subtree_hash(0, size) == root_of(leaves[:size]), size
    assert store.frontier().root() == root_of(leaves)
    assert store.frontier().size == 1100


def test_the_frontier_root_matches_the_reference_after_every_batch(make_store: MakeStore) -> None:
    """After each append_batch, frontier().root() is root_of the leaf hashes so far."""
    store = make_store()
    leaves: list[bytes] = []
    for size in (1, 2, 3, 255, 256, 257, 300, 511, 512, 513):
        entries = [entry_for(i) for i in range(store.size, size)]
        store.append_batch(entries)
        leaves += [leaf_hash(e) for e in entries]
        assert store.frontier().root() == root_of(leaves), size


def test_aligned_subtrees_are_the_tile_hashes(make_store: MakeStore) -> None:
    """subtree_hash over each aligned run of 256 leaves is MTH of those leaves."""
    store = make_store()
    leaves = [leaf_hash(e) for e in fill(store, 1100, batch=101)]
    for number in range(1100 // 256):
        start, end = number * 256, (number + 1) * 256
        assert store.subtree_hash(start, end) == root_of(leaves[start:end])
    assert store.subtree_hash(0, 1024) == root_of(leaves[:1024])


@pytest.mark.parametrize("tile_height", [1, 2, 3])
def test_every_subtree_matches_the_reference_with_deep_levels(
    make_store: MakeStore, tile_height: int
) -> None:
    """With tiles of 2, 4 or 8, every range [a, b) of 70 leaves hashes like root_of."""
    store = make_store(tile_height)
    leaves = [leaf_hash(e) for e in fill(store, 70, batch=9)]
    for start in range(71):
        for end in range(start, 71):
            assert store.subtree_hash(start, end) == root_of(leaves[start:end]), (start, end)


def test_long_unaligned_subtrees_match_the_reference(make_store: MakeStore) -> None:
    """Ranges longer than a tile that start off alignment still hash like root_of."""
    store = make_store()
    leaves = [leaf_hash(e) for e in fill(store, 2100, batch=300)]
    for start, end in [(1, 2100), (3, 1500), (255, 2047), (700, 2100), (1023, 2049)]:
        assert store.subtree_hash(start, end) == root_of(leaves[start:end]), (start, end)


@settings(
    max_examples=25,
    deadline=None,
    # make_store is a factory: each example builds its own fresh store from it.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    tile_height=st.integers(min_value=1, max_value=3),
    batches=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=12),
    data=st.data(),
)
def test_random_batches_and_ranges_match_the_reference(
    make_store: MakeStore, tile_height: int, batches: list[int], data: st.DataObject
) -> None:
    """For any batching and tile height, subtree hashes and the root match root_of."""
    store = make_store(tile_height)
    for count in batches:
        store.append_batch([entry_for(i) for i in range(store.size, store.size + count)])
    leaves = [leaf_hash(entry_for(i)) for i in range(store.size)]
    assert store.frontier().root() == root_of(leaves)
    for _ in range(10):
        end = data.draw(st.integers(min_value=0, max_value=store.size))
        start = data.draw(st.integers(min_value=0, max_value=end))
        assert store.subtree_hash(start, end) == root_of(leaves[start:end])


def test_the_frontier_is_a_copy(make_store: MakeStore) -> None:
    """Changing a frontier the store handed out does not change the store's tree."""
    store = make_store()
    fill(store, 5)
    root = store.frontier().root()
    store.frontier().append(b"\x00" * 32)
    assert store.frontier().root() == root


def test_the_largest_entry_is_accepted(make_store: MakeStore) -> None:
    """An entry of exactly 65,535 bytes fits a tile entry bundle and is stored."""
    store = make_store()
    store.append_batch([b"\xab" * MAX_ENTRY_SIZE])
    assert store.read(0) == b"\xab" * MAX_ENTRY_SIZE


def test_an_oversized_entry_is_refused_and_nothing_is_written(make_store: MakeStore) -> None:
    """A batch holding an entry over 65,535 bytes raises UsageError and appends nothing."""
    store = make_store()
    with pytest.raises(UsageError, match="entry 1 of the batch is 65,536 bytes"):
        store.append_batch([b"ok", b"x" * (MAX_ENTRY_SIZE + 1)])
    assert store.size == 0
    assert store.append_batch([b"after"]) == 0


def test_an_empty_batch_is_refused(make_store: MakeStore) -> None:
    """append_batch([]) raises UsageError."""
    store = make_store()
    with pytest.raises(UsageError, match="empty batch"):
        store.append_batch([])


def test_an_entry_that_is_not_bytes_is_refused(make_store: MakeStore) -> None:
    """Entries are bytes; a str in the batch raises UsageError."""
    store = make_store()
    with pytest.raises(UsageError, match="is str, not bytes"):
        store.append_batch(["text"])  # type: ignore[list-item]


@pytest.mark.parametrize("index", [-1, 3, 4])
def test_an_index_out_of_range_is_refused(make_store: MakeStore, index: int) -> None:
    """read and leaf_hash of an index outside [0, size) raise UsageError."""
    store = make_store()
    fill(store, 3)
    with pytest.raises(UsageError, match=f"entry {index} does not exist"):
        store.read(index)
    with pytest.raises(UsageError, match=f"entry {index} does not exist"):
        store.leaf_hash(index)


@pytest.mark.parametrize(("start", "stop"), [(-1, 2), (2, 1), (0, 4), (4, 4)])
def test_a_range_out_of_bounds_is_refused(make_store: MakeStore, start: int, stop: int) -> None:
    """read_range and subtree_hash outside [0, size] or backwards raise UsageError."""
    store = make_store()
    fill(store, 3)
    with pytest.raises(UsageError, match="not a range"):
        store.read_range(start, stop)
    with pytest.raises(UsageError, match="not a subtree"):
        store.subtree_hash(start, stop)


def test_a_closed_store_refuses_use_and_closes_twice(make_store: MakeStore) -> None:
    """After close(), every call raises UsageError; a second close() does nothing."""
    store = make_store()
    fill(store, 3)
    store.close()
    store.close()
    with pytest.raises(UsageError, match="closed"):
        store.read(0)
    with pytest.raises(UsageError, match="closed"):
        store.append_batch([b"x"])
    with pytest.raises(UsageError, match="closed"):
        store.frontier()
