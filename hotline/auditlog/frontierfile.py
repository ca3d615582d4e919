"""``frontier.bin``: the persisted size and tree frontier of a file store.

It is what makes opening a log cost the same at a million entries as at a
thousand: the store reads it, checks it against the files, and re-reads only
the records written after it. It is replaced atomically (write a temporary
file, ``fsync``, rename, ``fsync`` the directory), and only after the offsets
index and hash levels it vouches for were synced. Its bytes::

    offset  size  field
    0       4     magic b"HLfr"
    4       2     format version, big-endian uint16 (1)
    6       1     tile height h
    7       1     zero
    8       8     size n: entries 0 .. n-1 were durable when this was written
    16      8     first index of the segment holding entry n-1 (0 when n = 0)
    24      8     byte position in that segment just after entry n-1's record
                  (16, the end of the segment header, when n = 0)
    32      32*k  the frontier: k = popcount(n) perfect-subtree hashes, leftmost
                  (largest) first; their fold is the root of the tree of n leaves
    32+32k  4     CRC-32 (zlib.crc32), big-endian, of every byte before it
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from hotline.auditlog.diskio import create_file
from hotline.auditlog.merkle import HASH_SIZE
from hotline.errors import StoreError

__all__ = ["FRONTIER_NAME", "PersistedFrontier", "read_frontier", "write_frontier"]

FRONTIER_NAME: Final = "frontier.bin"
_MAGIC: Final = b"HLfr"
_VERSION: Final = 1
_FIXED: Final = struct.Struct(">4sHBBQQQ")
_CRC: Final = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class PersistedFrontier:
    """What ``frontier.bin`` says: how far the log was durable, and its right edge."""

    tile_height: int
    size: int
    segment: int
    position: int
    hashes: tuple[bytes, ...]

    def encode(self) -> bytes:
        body = _FIXED.pack(
            _MAGIC, _VERSION, self.tile_height, 0, self.size, self.segment, self.position
        ) + b"".join(self.hashes)
        return body + _CRC.pack(zlib.crc32(body))


def decode_frontier(data: bytes, path: Path) -> PersistedFrontier:
    """Parse ``frontier.bin``; anything malformed is a ``StoreError`` naming ``path``."""
    if len(data) < _FIXED.size + _CRC.size:
        raise StoreError(f"{path}: the file is {len(data)} bytes, too short to hold a frontier")
    body, (stored,) = data[: -_CRC.size], _CRC.unpack(data[-_CRC.size :])
    computed = zlib.crc32(body)
    if computed != stored:
        raise StoreError(
            f"{path}: the file fails its CRC-32 check (stored {stored:08x}, "
            f"computed {computed:08x}); it is damaged"
        )
    magic, version, tile_height, _, size, segment, position = _FIXED.unpack_from(body)
    if magic != _MAGIC:
        raise StoreError(f"{path}: not a hotline frontier file (magic {magic!r})")
    if version != _VERSION:
        raise StoreError(f"{path}: frontier format version {version} is not supported")
    raw = body[_FIXED.size :]
    if len(raw) != size.bit_count() * HASH_SIZE:
        raise StoreError(
            f"{path}: a tree of {size} entries has {size.bit_count()} frontier hashes, "
            f"but the file holds {len(raw)} bytes of them"
        )
    hashes = tuple(raw[i : i + HASH_SIZE] for i in range(0, len(raw), HASH_SIZE))
    return PersistedFrontier(tile_height, size, segment, position, hashes)


def read_frontier(path: Path) -> PersistedFrontier:
    return decode_frontier(path.read_bytes(), path)


def write_frontier(path: Path, frontier: PersistedFrontier) -> None:
    """Replace ``path`` with ``frontier``, atomically and durably."""
    create_file(path, frontier.encode())
