"""Fixed-width item files: the offsets index and the stored hash levels.

Both are a 16-byte header followed by items of one width, item ``k`` at byte
``16 + k * width``, so finding an item is arithmetic and one ``pread``::

    offset  size  field
    0       4     magic: b"HLix" (offsets.idx) or b"HLhs" (level-<L>.hashes)
    4       2     format version, big-endian uint16 (1)
    6       1     tile height h (0 in offsets.idx)
    7       1     level L (0 in offsets.idx)
    8       8     zero
    16      ...   items

    offsets.idx item k (16 bytes), where entry k's record is:
    0       8     first index of its segment (the segment's name), big-endian uint64
    8       8     byte position of the record in that segment, big-endian uint64

    level-<L>.hashes item k (32 bytes):
    0       32    MTH(D[k * 2**(h*L) : (k + 1) * 2**(h*L)]); level 0 holds leaf hashes

These files are derived from the segments: the store writes them with every
batch but syncs them only before it persists the frontier, and after a crash
it cuts them back to the persisted size and rebuilds the rest from the records.
The file may be longer than ``count`` (a tail not yet cut); it is never read there.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Final

from hotline.auditlog.diskio import create_file, read_at, write_at
from hotline.errors import StoreError

__all__ = [
    "ARRAY_HEADER",
    "OFFSET",
    "OFFSETS_NAME",
    "ArrayFile",
    "level_header",
    "level_name",
    "offsets_header",
    "parse_level_name",
]

ARRAY_HEADER: Final = struct.Struct(">4sHBBQ")
OFFSET: Final = struct.Struct(">QQ")
_OFFSETS_MAGIC: Final = b"HLix"
_LEVEL_MAGIC: Final = b"HLhs"
_VERSION: Final = 1
OFFSETS_NAME: Final = "offsets.idx"
_LEVEL_PREFIX: Final = "level-"
_LEVEL_SUFFIX: Final = ".hashes"


def offsets_header() -> bytes:
    return ARRAY_HEADER.pack(_OFFSETS_MAGIC, _VERSION, 0, 0, 0)


def level_header(tile_height: int, level: int) -> bytes:
    return ARRAY_HEADER.pack(_LEVEL_MAGIC, _VERSION, tile_height, level, 0)


def level_name(level: int) -> str:
    return f"{_LEVEL_PREFIX}{level}{_LEVEL_SUFFIX}"


def parse_level_name(name: str) -> int | None:
    """The level a ``level-<L>.hashes`` file name stands for, or None."""
    if not (name.startswith(_LEVEL_PREFIX) and name.endswith(_LEVEL_SUFFIX)):
        return None
    digits = name[len(_LEVEL_PREFIX) : -len(_LEVEL_SUFFIX)]
    return int(digits) if digits.isdigit() and len(digits) <= 2 else None


class ArrayFile:
    """One open item file; ``count`` is the number of items the store stands behind."""

    __slots__ = ("_dirty", "_fd", "count", "path", "width")

    def __init__(self, path: Path, fd: int, width: int, count: int) -> None:
        self.path: Final = path
        self.width: Final = width
        self._fd = fd
        self.count = count
        self._dirty = False

    @classmethod
    def create(cls, path: Path, header: bytes, width: int) -> ArrayFile:
        """Create the file holding only ``header`` (atomically) and open it."""
        create_file(path, header)
        return cls.open(path, header, width)

    @classmethod
    def open(cls, path: Path, header: bytes, width: int) -> ArrayFile:
        """Open an existing file whose header must equal ``header``."""
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            raise StoreError(f"{path}: the file is missing") from None
        try:
            found = read_at(fd, ARRAY_HEADER.size, 0)
            items = (os.fstat(fd).st_size - ARRAY_HEADER.size) // width
        except BaseException:
            os.close(fd)
            raise
        if found != header:
            os.close(fd)
            raise StoreError(
                f"{path}: the header is {found.hex()}, expected {header.hex()}; "
                "the file is damaged or belongs to another store"
            )
        return cls(path, fd, width, items)

    def read(self, start: int, stop: int) -> bytes:
        """Items ``[start, stop)``, concatenated."""
        size = (stop - start) * self.width
        data = read_at(self._fd, size, ARRAY_HEADER.size + start * self.width)
        if len(data) != size:
            raise StoreError(
                f"{self.path}: items {start} to {stop - 1} are expected but the file ends "
                f"after {len(data) // self.width} of them; it was truncated"
            )
        return data

    def write(self, start: int, data: bytes) -> None:
        """Write items from ``start`` (one ``pwrite``); ``count`` becomes their end."""
        write_at(self._fd, data, ARRAY_HEADER.size + start * self.width)
        self.count = start + len(data) // self.width
        self._dirty = True

    def truncate(self, count: int) -> None:
        """Cut the file after ``count`` items."""
        os.ftruncate(self._fd, ARRAY_HEADER.size + count * self.width)
        self.count = count
        self._dirty = True

    def file_items(self) -> int:
        """How many whole items the file holds now, whatever ``count`` says."""
        return (os.fstat(self._fd).st_size - ARRAY_HEADER.size) // self.width

    def sync(self) -> None:
        """``fsync`` the file if it was written since the last sync."""
        if self._dirty:
            os.fsync(self._fd)
            self._dirty = False

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
