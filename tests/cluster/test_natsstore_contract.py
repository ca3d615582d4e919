"""The LogStore contract, run against NatsStore on a real three-node JetStream cluster."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from hotline.auditlog.memstore import MemoryStore
from hotline.auditlog.natsstore import NatsStore, StreamClient
from hotline.auditlog.store import TILE_HEIGHT, LogStore
from hotline.cluster.natsnodes import LoopbackCluster
from tests.auditlog_store.crash_child import entry_for
from tests.auditlog_store.test_store_contract import (
    MakeStore,
    test_a_closed_store_refuses_use_and_closes_twice,
    test_a_range_out_of_bounds_is_refused,
    test_aligned_subtrees_are_the_tile_hashes,
    test_an_empty_batch_is_refused,
    test_an_empty_store_has_the_empty_root,
    test_an_entry_that_is_not_bytes_is_refused,
    test_an_index_out_of_range_is_refused,
    test_an_oversized_entry_is_refused_and_nothing_is_written,
    test_append_batch_returns_the_index_of_its_first_entry,
    test_appended_entries_read_back_byte_for_byte,
    test_every_subtree_matches_the_reference_with_deep_levels,
    test_leaf_hash_is_the_rfc9162_leaf_hash,
    test_long_unaligned_subtrees_match_the_reference,
    test_random_batches_and_ranges_match_the_reference,
    test_read_range_returns_the_entries_in_order,
    test_root_at_every_size_matches_the_reference,
    test_the_frontier_is_a_copy,
    test_the_frontier_root_matches_the_reference_after_every_batch,
    test_the_largest_entry_is_accepted,
)
from tests.cluster.conftest import fresh_settings

__all__ = [
    "test_a_closed_store_refuses_use_and_closes_twice",
    "test_a_range_out_of_bounds_is_refused",
    "test_aligned_subtrees_are_the_tile_hashes",
    "test_an_empty_batch_is_refused",
    "test_an_empty_store_has_the_empty_root",
    "test_an_entry_that_is_not_bytes_is_refused",
    "test_an_index_out_of_range_is_refused",
    "test_an_oversized_entry_is_refused_and_nothing_is_written",
    "test_append_batch_returns_the_index_of_its_first_entry",
    "test_appended_entries_read_back_byte_for_byte",
    "test_every_subtree_matches_the_reference_with_deep_levels",
    "test_leaf_hash_is_the_rfc9162_leaf_hash",
    "test_long_unaligned_subtrees_match_the_reference",
    "test_random_batches_and_ranges_match_the_reference",
    "test_read_range_returns_the_entries_in_order",
    "test_root_at_every_size_matches_the_reference",
    "test_the_frontier_is_a_copy",
    "test_the_frontier_root_matches_the_reference_after_every_batch",
    "test_the_largest_entry_is_accepted",
]


@pytest.fixture
def make_store(nats_cluster: LoopbackCluster) -> Iterator[MakeStore]:
    """A factory of NatsStores, each on a new R3 stream, deleted afterwards."""
    made: list[NatsStore] = []

    def make(tile_height: int = TILE_HEIGHT) -> LogStore:
        store = NatsStore(
            fresh_settings(nats_cluster), mirror=MemoryStore(tile_height=tile_height)
        )
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()
        asyncio.run(_delete(store))


async def _delete(store: NatsStore) -> None:
    client = StreamClient(store.settings)
    await client.connect()
    try:
        await client.delete_stream()
    finally:
        await client.close()


def test_a_second_store_on_the_stream_sees_the_first_ones_entries(
    nats_cluster: LoopbackCluster,
) -> None:
    """A store opened on an existing stream catches its mirror up with every entry in order."""
    settings = fresh_settings(nats_cluster)
    first = NatsStore(settings)
    second: NatsStore | None = None
    try:
        first.append_batch([entry_for(i) for i in range(300)])
        second = NatsStore(settings)
        assert second.size == 300
        assert second.read_range(0, 300) == first.read_range(0, 300)
        assert second.frontier().root() == first.frontier().root()
    finally:
        for store in (first, second):
            if store is not None:
                store.close()
        asyncio.run(_delete(first))


def test_two_writers_get_each_entry_its_own_index(nats_cluster: LoopbackCluster) -> None:
    """With two stores appending to one stream, append_each names where each entry landed."""
    settings = fresh_settings(nats_cluster)
    a, b = NatsStore(settings), NatsStore(settings)
    try:
        got_a = a.append_each([b"a0", b"a1"])
        got_b = b.append_each([b"b0"])
        got_a += a.append_each([b"a2"])
        assert got_a == [0, 1, 3]
        assert got_b == [2]
        assert a.read_range(0, 4) == [b"a0", b"a1", b"b0", b"a2"]
        b.append_each([b"b1"])
        assert a.append_each([b"a3"]) == [5]
        assert a.read(4) == b"b1"
    finally:
        a.close()
        b.close()
        asyncio.run(_delete(a))


async def _stream_leader(store: NatsStore) -> str:
    client = StreamClient(store.settings)
    await client.connect()
    try:
        info = await client.js.stream_info(store.settings.stream)
    finally:
        await client.close()
    assert info.cluster is not None
    assert info.cluster.leader is not None
    return str(info.cluster.leader)


def test_appends_go_on_when_the_stream_leader_dies(nats_cluster: LoopbackCluster) -> None:
    """SIGKILL the stream's leader: the next append waits out the election and nothing is lost."""
    settings = fresh_settings(nats_cluster)
    store = NatsStore(settings)
    store.append_batch([entry_for(i) for i in range(50)])
    leader = asyncio.run(_stream_leader(store))
    node = next(n for n in nats_cluster.nodes if n.name == leader)
    try:
        nats_cluster.kill(node)
        assert store.append_batch([entry_for(i) for i in range(50, 60)]) == 50
        nats_cluster.restart(node)
        reader = NatsStore(settings)
        try:
            assert reader.read_range(0, 60) == [entry_for(i) for i in range(60)]
        finally:
            reader.close()
    finally:
        nats_cluster.restart(node)
        store.close()
        asyncio.run(_delete(store))
