"""C2SP tlog-tiles: the audit log's Merkle tree and entries as static resources, pure.

A level-L tile N holds the 32-byte hashes ``MTH(D[(N*256+i)*256**L :
(N*256+i+1)*256**L])`` for i from 0 to 255; level 0 holds leaf hashes. The
rightmost tile of a level may be partial, of width ``floor(size / 256**L) mod
256``. Paths are ``tile/<L>/<N>[.p/<W>]`` for hashes and
``tile/entries/<N>[.p/<W>]`` for the entry bundle of level-0 tile N, with N
written in zero-padded 3-digit groups, all but the last prefixed ``x``.

Invariants this module keeps:

- A :class:`TileRef` always names a tile that can exist: level 0 to 63, index
  at least 0, width 1 to 256, and entry bundles only at level 0.
- Paths have one spelling: ``parse_tile_path(ref.path()) == ref`` and any other
  spelling (leading zeros, a ``.p/256`` suffix, ``..``) is refused with a
  :class:`~hotline.errors.ProofError` naming the path.
- An entry bundle is a sequence of big-endian uint16 lengths each followed by
  that many bytes; decoding refuses truncation and more than 256 entries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from hotline.auditlog.merkle import HASH_SIZE, SubtreeHasher
from hotline.errors import ProofError, UsageError

__all__ = [
    "MAX_ENTRY_SIZE",
    "MAX_LEVEL",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "TileRef",
    "decode_entry_bundle",
    "encode_entry_bundle",
    "entries_path",
    "entry_bundles_for_size",
    "parse_tile_path",
    "split_tile",
    "tile_hashes",
    "tile_index_path",
    "tile_path",
    "tiles_for_size",
]

TILE_WIDTH: Final = 256
TILE_HEIGHT: Final = 8  # log2(TILE_WIDTH): a tile spans 8 levels of the tree
MAX_LEVEL: Final = 63
MAX_ENTRY_SIZE: Final = 0xFFFF
# No tile index of a tree of fewer than 2**64 leaves needs more than 7 groups.
_MAX_PATH_LENGTH: Final = 100
_LEVEL: Final = re.compile(r"0|[1-9][0-9]?")
_WIDTH: Final = re.compile(r"[1-9][0-9]{0,2}")
_INNER_GROUP: Final = re.compile(r"x[0-9]{3}")
_LAST_GROUP: Final = re.compile(r"[0-9]{3}")


def _ref_problem(level: int, index: int, width: int, entries: bool) -> str | None:
    if not 0 <= level <= MAX_LEVEL:
        return f"tile level {level} is outside 0 to {MAX_LEVEL}"
    if entries and level != 0:
        return f"entry bundles belong to level 0, not level {level}"
    if index < 0:
        return f"tile index {index} is negative"
    if not 1 <= width <= TILE_WIDTH:
        return f"tile width {width} is outside 1 to {TILE_WIDTH}"
    return None


def tile_index_path(index: int) -> str:
    """Tile index N as 3-digit groups, all but the last prefixed ``x``: 1234067 → x001/x234/067."""
    if index < 0:
        raise UsageError(f"tile index {index} is negative")
    groups: list[str] = []
    while True:
        index, group = divmod(index, 1000)
        groups.append(f"{group:03d}")
        if index == 0:
            break
    groups.reverse()
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


def _suffix(width: int) -> str:
    return "" if width == TILE_WIDTH else f".p/{width}"


@dataclass(frozen=True, slots=True)
class TileRef:
    """One tile (or, with ``entries``, one entry bundle): level, index and width."""

    level: int
    index: int
    width: int = TILE_WIDTH
    entries: bool = False

    def __post_init__(self) -> None:
        problem = _ref_problem(self.level, self.index, self.width, self.entries)
        if problem is not None:
            raise UsageError(problem)

    @property
    def is_partial(self) -> bool:
        return self.width < TILE_WIDTH

    @property
    def start(self) -> int:
        """The first leaf this tile covers."""
        return self.index << (TILE_HEIGHT * (self.level + 1))

    def path(self) -> str:
        """The resource path under the log's prefix, without a leading slash."""
        where = "entries" if self.entries else str(self.level)
        return f"tile/{where}/{tile_index_path(self.index)}{_suffix(self.width)}"


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>`` for a full tile, ``tile/<L>/<N>.p/<W>`` for a partial one."""
    return TileRef(level, index, width).path()


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """``tile/entries/<N>`` for a full bundle, ``tile/entries/<N>.p/<W>`` for a partial one."""
    return TileRef(0, index, width, entries=True).path()


def parse_tile_path(path: str) -> TileRef:
    """The tile or entry bundle a path names; refuses every non-canonical spelling."""
    if len(path) > _MAX_PATH_LENGTH:
        raise ProofError(f"tile path of {len(path)} characters is too long")
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise ProofError(f"{path!r} is not a tile path 'tile/<L>/<N>[.p/<W>]'")
    entries = parts[1] == "entries"
    if not entries and _LEVEL.fullmatch(parts[1]) is None:
        raise ProofError(f"tile path {path!r} has level {parts[1]!r}, not 0 to 63")
    level = 0 if entries else int(parts[1])
    groups = parts[2:]
    width = TILE_WIDTH
    if len(groups) >= 2 and groups[-2].endswith(".p"):
        if _WIDTH.fullmatch(groups[-1]) is None or int(groups[-1]) >= TILE_WIDTH:
            raise ProofError(f"tile path {path!r} has width {groups[-1]!r}, not 1 to 255")
        width = int(groups[-1])
        groups = [*groups[:-2], groups[-2][: -len(".p")]]
    if _LAST_GROUP.fullmatch(groups[-1]) is None or not all(
        _INNER_GROUP.fullmatch(g) for g in groups[:-1]
    ):
        raise ProofError(f"tile path {path!r} does not spell its index in 3-digit groups")
    index = int("".join(g.lstrip("x") for g in groups))
    if tile_index_path(index) != "/".join(groups):
        raise ProofError(f"tile path {path!r} spells index {index} with leading zeros")
    problem = _ref_problem(level, index, width, entries)
    if problem is not None:
        raise ProofError(f"tile path {path!r}: {problem}")
    return TileRef(level, index, width, entries=entries)


def tiles_for_size(size: int) -> list[TileRef]:
    """Every hash tile of a tree of ``size`` leaves, level by level, full then partial."""
    if size < 0:
        raise UsageError(f"tree size {size} is negative")
    tiles: list[TileRef] = []
    level = 0
    while level <= MAX_LEVEL:
        hashes = size >> (TILE_HEIGHT * level)
        if hashes == 0:
            break
        full, partial = divmod(hashes, TILE_WIDTH)
        tiles.extend(TileRef(level, n) for n in range(full))
        if partial:
            tiles.append(TileRef(level, full, partial))
        level += 1
    return tiles


def entry_bundles_for_size(size: int) -> list[TileRef]:
    """Every entry bundle of a tree of ``size`` leaves, full then partial."""
    if size < 0:
        raise UsageError(f"tree size {size} is negative")
    full, partial = divmod(size, TILE_WIDTH)
    bundles = [TileRef(0, n, entries=True) for n in range(full)]
    if partial:
        bundles.append(TileRef(0, full, partial, entries=True))
    return bundles


def tile_hashes(level: int, index: int, width: int, subtree: SubtreeHasher) -> bytes:
    """The content of a tile: ``width`` concatenated hashes, each from ``subtree``."""
    ref = TileRef(level, index, width)
    span = 1 << (TILE_HEIGHT * level)
    first = ref.start
    return b"".join(subtree(first + i * span, first + (i + 1) * span) for i in range(width))


def split_tile(data: bytes, width: int) -> list[bytes]:
    """The hashes of a fetched tile of ``width`` hashes; refuses any other length."""
    if len(data) != width * HASH_SIZE:
        raise ProofError(
            f"tile of width {width} is {len(data)} bytes, expected {width * HASH_SIZE}"
        )
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def encode_entry_bundle(entries: Iterable[bytes]) -> bytes:
    """Entries as one bundle: each a big-endian uint16 length, then its bytes."""
    out = bytearray()
    count = 0
    for position, entry in enumerate(entries):
        if len(entry) > MAX_ENTRY_SIZE:
            raise UsageError(
                f"entry {position} is {len(entry)} bytes; a bundle entry holds at most "
                f"{MAX_ENTRY_SIZE}"
            )
        out += len(entry).to_bytes(2, "big")
        out += entry
        count += 1
    if count > TILE_WIDTH:
        raise UsageError(f"a bundle holds at most {TILE_WIDTH} entries, not {count}")
    return bytes(out)


def decode_entry_bundle(data: bytes, width: int | None = None) -> list[bytes]:
    """The entries of a bundle; if ``width`` is given, exactly that many are required."""
    entries: list[bytes] = []
    offset = 0
    while offset < len(data):
        if len(entries) == TILE_WIDTH:
            raise ProofError(f"entry bundle holds more than {TILE_WIDTH} entries")
        if offset + 2 > len(data):
            raise ProofError(f"entry bundle is truncated inside the length of entry {len(entries)}")
        length = int.from_bytes(data[offset : offset + 2], "big")
        offset += 2
        if offset + length > len(data):
            raise ProofError(
                f"entry bundle is truncated: entry {len(entries)} needs {length} bytes, "
                f"{len(data) - offset} remain"
            )
        entries.append(data[offset : offset + length])
        offset += length
    if width is not None and len(entries) != width:
        raise ProofError(f"entry bundle holds {len(entries)} entries, expected {width}")
    return entries
