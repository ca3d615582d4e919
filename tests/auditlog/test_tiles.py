"""C2SP tlog-tiles: tile paths, the tiles of a tree, tile contents and entry bundles."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.auditlog.merkle import ListHasher, leaf_hash, root_of
from hotline.auditlog.tiles import (
    MAX_ENTRY_SIZE,
    TileRef,
    decode_entry_bundle,
    encode_entry_bundle,
    entries_path,
    entry_bundles_for_size,
    parse_tile_path,
    split_tile,
    tile_hashes,
    tile_index_path,
    tile_path,
    tiles_for_size,
)
from hotline.errors import ProofError, UsageError

BIG = 70_000
BIG_LEAVES = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(BIG)]
BIG_HASHER = ListHasher(BIG_LEAVES)


@pytest.mark.parametrize(
    ("index", "path"),
    [
        (0, "000"),
        (5, "005"),
        (999, "999"),
        (1000, "x001/000"),
        (1234067, "x001/x234/067"),
        (1_000_000, "x001/x000/000"),
    ],
)
def test_tile_index_is_written_in_3_digit_groups(index: int, path: str) -> None:
    """Tile indexes are zero-padded 3-digit groups, all but the last prefixed with x."""
    assert tile_index_path(index) == path


def test_full_tiles_have_no_width_suffix() -> None:
    """Full tiles and bundles have plain paths; partial ones end in .p/<W>."""
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(2, 5, 256) == "tile/2/005"
    assert tile_path(1, 5, 17) == "tile/1/005.p/17"
    assert entries_path(1234067) == "tile/entries/x001/x234/067"
    assert entries_path(273, 112) == "tile/entries/273.p/112"


@pytest.mark.parametrize(
    ("path", "ref"),
    [
        ("tile/0/000", TileRef(0, 0)),
        ("tile/63/x001/x234/067", TileRef(63, 1234067)),
        ("tile/1/001.p/17", TileRef(1, 1, 17)),
        ("tile/entries/273.p/112", TileRef(0, 273, 112, entries=True)),
        ("tile/entries/x001/000", TileRef(0, 1000, entries=True)),
        ("tile/0/005.p/255", TileRef(0, 5, 255)),
    ],
)
def test_tile_paths_parse_to_what_they_name(path: str, ref: TileRef) -> None:
    """A canonical tile path parses to its level, index, width and kind, and back."""
    assert parse_tile_path(path) == ref
    assert ref.path() == path


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("tile/00/000", "level '00'"),
        ("tile/64/000", "level 64 is outside 0 to 63"),
        ("tile/-1/000", "level '-1'"),
        ("tile/x/000", "level 'x'"),
        ("tile/0/5", "3-digit groups"),
        ("tile/0/0005", "3-digit groups"),
        ("tile/0/x1/005", "3-digit groups"),
        ("tile/0/001/005", "3-digit groups"),
        ("tile/0/x005", "3-digit groups"),
        ("tile/0/x000/005", "leading zeros"),
        ("tile/0/005.p/0", "width '0'"),
        ("tile/0/005.p/256", "width '256'"),
        ("tile/0/005.p/05", "width '05'"),
        ("tile/0/005.p/", "width ''"),
        ("tile/0/005.p", "3-digit groups"),
        ("tile/0/005.p/5/006", "3-digit groups"),
        ("tile/0/../005", "3-digit groups"),
        ("tile/0/005/..", "3-digit groups"),
        ("tile/../0/005", "level '..'"),
        ("tile/entries/..", "3-digit groups"),
        ("tile/0", "not a tile path"),
        ("tiles/0/000", "not a tile path"),
        ("/tile/0/000", "not a tile path"),
        ("tile/0/" + "x001/" * 40 + "000", "too long"),
    ],
)
def test_malformed_tile_paths_are_refused(path: str, reason: str) -> None:
    """Every non-canonical or impossible tile path is refused, naming what is wrong."""
    with pytest.raises(ProofError, match=reason):
        parse_tile_path(path)


@given(
    st.integers(min_value=0, max_value=63),
    st.integers(min_value=0, max_value=2**56),
    st.integers(min_value=1, max_value=256),
    st.booleans(),
)
def test_every_tile_path_round_trips(level: int, index: int, width: int, entries: bool) -> None:
    """parse_tile_path inverts TileRef.path for every tile that can exist."""
    ref = TileRef(0 if entries else level, index, width, entries=entries)
    assert parse_tile_path(ref.path()) == ref


def test_impossible_tile_refs_are_the_callers_mistake() -> None:
    """TileRef refuses levels above 63, negative indexes, widths outside 1..256."""
    with pytest.raises(UsageError, match="level 64"):
        TileRef(64, 0)
    with pytest.raises(UsageError, match="negative"):
        TileRef(0, -1)
    with pytest.raises(UsageError, match="width 0"):
        TileRef(0, 0, 0)
    with pytest.raises(UsageError, match="width 257"):
        TileRef(0, 0, 257)
    with pytest.raises(UsageError, match="level 0, not level 1"):
        TileRef(1, 0, entries=True)


def test_a_tree_of_70000_entries_has_the_tiles_of_the_spec_example() -> None:
    """70,000 entries make 273 + 1 level-0 tiles, 1 + 1 level-1 tiles and 1 level-2 tile."""
    tiles = tiles_for_size(BIG)
    level0 = [t for t in tiles if t.level == 0]
    assert [t for t in level0 if not t.is_partial] == [TileRef(0, n) for n in range(273)]
    assert [t for t in level0 if t.is_partial] == [TileRef(0, 273, 112)]
    assert [t for t in tiles if t.level == 1] == [TileRef(1, 0), TileRef(1, 1, 17)]
    assert [t for t in tiles if t.level == 2] == [TileRef(2, 0, 1)]
    assert len(tiles) == 273 + 1 + 2 + 1


def test_a_tree_of_256_entries_has_one_full_tile_and_one_level_1_partial() -> None:
    """256 entries: one full level-0 tile and a level-1 partial of width 1."""
    assert tiles_for_size(256) == [TileRef(0, 0), TileRef(1, 0, 1)]
    assert tiles_for_size(255) == [TileRef(0, 0, 255)]
    assert tiles_for_size(0) == []


def test_entry_bundles_follow_the_level_0_tiles() -> None:
    """A tree of 70,000 entries has 273 full bundles and a partial of 112."""
    bundles = entry_bundles_for_size(BIG)
    assert bundles[:-1] == [TileRef(0, n, entries=True) for n in range(273)]
    assert bundles[-1] == TileRef(0, 273, 112, entries=True)
    assert entry_bundles_for_size(512) == [TileRef(0, 0, entries=True), TileRef(0, 1, entries=True)]
    assert entry_bundles_for_size(0) == []


def test_level_0_tiles_hold_leaf_hashes() -> None:
    """A level-0 tile is the concatenated leaf hashes of its 256 (or width) leaves."""
    assert tile_hashes(0, 3, 256, BIG_HASHER) == b"".join(BIG_LEAVES[768:1024])
    assert tile_hashes(0, 273, 112, BIG_HASHER) == b"".join(BIG_LEAVES[69888:])


def test_each_upper_tile_hash_is_the_root_of_a_full_tile_below() -> None:
    """Every hash of a level-1 tile is the Merkle root of the level-0 tile it covers."""
    level1 = split_tile(tile_hashes(1, 1, 17, BIG_HASHER), 17)
    for i, h in enumerate(level1):
        below = split_tile(tile_hashes(0, 256 + i, 256, BIG_HASHER), 256)
        assert h == root_of(below)
    (level2,) = split_tile(tile_hashes(2, 0, 1, BIG_HASHER), 1)
    assert level2 == root_of(split_tile(tile_hashes(1, 0, 256, BIG_HASHER), 256))
    assert level2 == BIG_HASHER(0, 65536)


def test_tile_hashes_asks_for_one_subtree_per_hash() -> None:
    """Tile contents come from width calls for the aligned subtrees the spec names."""
    calls: list[tuple[int, int]] = []

    def hasher(start: int, end: int) -> bytes:
        calls.append((start, end))
        return bytes(32)

    tile_hashes(2, 3, 4, hasher)
    span = 256**2
    first = 3 * 256**3
    assert calls == [(first + i * span, first + (i + 1) * span) for i in range(4)]


def test_split_tile_refuses_the_wrong_length() -> None:
    """A fetched tile must be exactly 32 bytes per hash of its width."""
    with pytest.raises(ProofError, match="width 2 is 63 bytes, expected 64"):
        split_tile(bytes(63), 2)


def test_entry_bundles_are_uint16_length_prefixed() -> None:
    """Each entry is written as a big-endian uint16 length and its bytes."""
    assert encode_entry_bundle([b"ab", b"", b"c"]) == b"\x00\x02ab\x00\x00\x00\x01c"
    assert decode_entry_bundle(b"\x00\x02ab\x00\x00\x00\x01c") == [b"ab", b"", b"c"]


@given(st.lists(st.binary(max_size=300), max_size=40))
def test_entry_bundles_round_trip(entries: list[bytes]) -> None:
    """decode_entry_bundle inverts encode_entry_bundle."""
    assert decode_entry_bundle(encode_entry_bundle(entries), len(entries)) == entries


def test_the_largest_entry_fits_and_a_larger_one_does_not() -> None:
    """An entry of 65,535 bytes is encoded; one of 65,536 is refused."""
    big = b"x" * MAX_ENTRY_SIZE
    assert decode_entry_bundle(encode_entry_bundle([big])) == [big]
    with pytest.raises(UsageError, match="entry 1 is 65536 bytes"):
        encode_entry_bundle([b"a", big + b"x"])


def test_a_bundle_holds_at_most_256_entries() -> None:
    """Encoding or decoding more than 256 entries is refused."""
    with pytest.raises(UsageError, match="at most 256 entries, not 257"):
        encode_entry_bundle([b""] * 257)
    with pytest.raises(ProofError, match="more than 256"):
        decode_entry_bundle(b"\x00\x00" * 257)
    assert len(decode_entry_bundle(b"\x00\x00" * 256, 256)) == 256


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x00", "inside the length of entry 0"),
        (b"\x00\x01a\x00", "inside the length of entry 1"),
        (b"\x00\x03ab", "entry 0 needs 3 bytes, 2 remain"),
        (b"\x00\x01a\xff\xff", "entry 1 needs 65535 bytes, 0 remain"),
    ],
)
def test_truncated_bundles_are_refused(data: bytes, reason: str) -> None:
    """A bundle cut inside a length or inside an entry is refused."""
    with pytest.raises(ProofError, match=reason):
        decode_entry_bundle(data)


def test_a_bundle_with_the_wrong_number_of_entries_is_refused() -> None:
    """When the width is known, the bundle must hold exactly that many entries."""
    data = encode_entry_bundle([b"a", b"b"])
    with pytest.raises(ProofError, match="holds 2 entries, expected 3"):
        decode_entry_bundle(data, 3)


def test_bundle_entries_hash_to_the_level_0_tile() -> None:
    """The leaf hashes of a bundle's entries are the matching level-0 tile."""
    entries = [f"warning {i}".encode() for i in range(300)]
    hasher = ListHasher([leaf_hash(e) for e in entries])
    bundle = decode_entry_bundle(encode_entry_bundle(entries[256:]), 44)
    assert b"".join(leaf_hash(e) for e in bundle) == tile_hashes(0, 1, 44, hasher)
