"""The few durable-write moves the file store is built from.

- ``write_at`` writes all of a buffer at a byte position (``pwrite`` may write less).
- ``read_at`` reads up to ``size`` bytes at a position; fewer means end of file.
- ``sync_directory`` makes a directory's entries (created, renamed, removed
  files) durable; POSIX needs it after every ``open(O_CREAT)`` and ``rename``.
- ``create_file`` writes a whole new file atomically: a temporary name, its data,
  ``fsync``, ``rename`` into place, ``fsync`` of the directory. The file is then
  either absent or complete after a crash; a leftover ``*.tmp`` is garbage.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

__all__ = ["TEMP_SUFFIX", "create_file", "read_at", "sync_directory", "write_at"]

TEMP_SUFFIX: Final = ".tmp"


def write_at(fd: int, data: bytes, position: int) -> None:
    """Write all of ``data`` at ``position``."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, position)
        view = view[written:]
        position += written


def read_at(fd: int, size: int, position: int) -> bytes:
    """Read ``size`` bytes at ``position``, or fewer if the file ends first."""
    chunks: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = os.pread(fd, remaining, position)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
        position += len(chunk)
    return b"".join(chunks)


def sync_directory(directory: Path) -> None:
    """``fsync`` the directory itself, so its entries survive a crash."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_file(path: Path, data: bytes) -> None:
    """Create or replace ``path`` holding ``data``, atomically and durably.

    The data goes to a temporary file beside it, is fsynced, renamed over
    ``path`` and the directory fsynced: after a crash ``path`` holds either
    the old bytes or the new ones, never a mix.
    """
    temporary = path.with_name(path.name + TEMP_SUFFIX)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_at(fd, data, 0)
        os.fsync(fd)
    finally:
        os.close(fd)
    temporary.replace(path)
    sync_directory(path.parent)
