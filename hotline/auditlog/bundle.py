"""Log bundles: the audit log as static files in the C2SP tlog-tiles layout.

A bundle directory holds::

    checkpoint                      the relay-signed checkpoint (a C2SP signed note)
    tile/<L>/<N>[.p/<W>]            hash tiles of every level
    tile/entries/<N>[.p/<W>]        entry bundles: uint16 length + entry, per entry
    network.toml                    the network's public keys, links and limits

Any tool that follows transparency logs can read it; ``hotline audit`` works
on nothing else. :func:`export_bundle` writes one from a store; :class:`Bundle`
reads one back, checking every path and length it touches.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from hotline.auditlog.checkpoint import Checkpoint, open_checkpoint
from hotline.auditlog.hashlevels import subtree_hash
from hotline.auditlog.store import LogStore
from hotline.auditlog.tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    TileRef,
    decode_entry_bundle,
    encode_entry_bundle,
    entry_bundles_for_size,
    split_tile,
    tile_hashes,
    tiles_for_size,
)
from hotline.errors import AuditError, ConfigError, NoteError, UsageError, VerificationFailed
from hotline.network import Network, network_to_toml
from hotline.network_file import load_network

__all__ = [
    "CHECKPOINT_NAME", "NETWORK_NAME", "Bundle", "decodable_prefix", "export_bundle"
]

CHECKPOINT_NAME: Final = "checkpoint"
NETWORK_NAME: Final = "network.toml"

Progress = Callable[[int], None]


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def export_bundle(
    store: LogStore,
    checkpoint: bytes,
    size: int,
    network_toml: bytes,
    out: Path,
    *,
    progress: Progress | None = None,
) -> None:
    """Write the bundle of the first ``size`` entries (the checkpoint's size) to ``out``."""
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} is not empty; export into a new directory")
    out.mkdir(parents=True, exist_ok=True)
    for ref in entry_bundles_for_size(size):
        entries = store.read_range(ref.start, ref.start + ref.width)
        _write(out / ref.path(), encode_entry_bundle(entries))
        if progress is not None:
            progress(ref.width)
    for ref in tiles_for_size(size):
        _write(out / ref.path(), tile_hashes(ref.level, ref.index, ref.width, store.subtree_hash))
    _write(out / NETWORK_NAME, network_toml)
    # The checkpoint goes last: a bundle with a checkpoint is a complete bundle.
    _write(out / CHECKPOINT_NAME, checkpoint)
    fd = os.open(out, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Bundle:
    """A log bundle on disk, read lazily and checked as it is read."""

    def __init__(self, path: Path, network: Network | None = None) -> None:
        if not (path / CHECKPOINT_NAME).is_file():
            raise AuditError(f"{path} is not a log bundle: it has no {CHECKPOINT_NAME} file")
        self.path: Final = path
        if network is None:
            if not (path / NETWORK_NAME).is_file():
                raise ConfigError(f"{path} has no {NETWORK_NAME}; pass --network")
            network = load_network(path / NETWORK_NAME)
        self.network: Final = network
        self.checkpoint_bytes: Final = (path / CHECKPOINT_NAME).read_bytes()
        self._checkpoint: Checkpoint | None = None

    def checkpoint(self) -> Checkpoint:
        """The bundle's checkpoint, after checking the relay's signature on it."""
        if self._checkpoint is None:
            relay = self.network.relay
            try:
                self._checkpoint = open_checkpoint(  # any relay key; verify checks its period
                    self.checkpoint_bytes, relay.origin, [p.key for p in relay.periods]
                )
            except NoteError as exc:
                raise VerificationFailed(
                    -1, f"the bundle's checkpoint does not verify: {exc}"
                ) from exc
        return self._checkpoint

    @property
    def network_toml(self) -> bytes:
        """The network as network.toml bytes (to hand to worker processes)."""
        return network_to_toml(self.network).encode("utf-8")

    def read_raw(self, ref: TileRef) -> bytes:
        """The bytes of a tile or entry bundle file, exactly as stored."""
        return self._read(ref)

    def _read(self, ref: TileRef) -> bytes:
        path = self.path / ref.path()
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise VerificationFailed(
                ref.start if ref.level == 0 else -1, f"the bundle lacks {ref.path()}"
            ) from None

    def entry_bundle(self, ref: TileRef) -> list[bytes]:
        """The entries of one bundle, exactly ``ref.width`` of them."""
        data = self._read(ref)
        try:
            return decode_entry_bundle(data, ref.width)
        except AuditError as exc:
            raise VerificationFailed(
                ref.start + decodable_prefix(data), f"{ref.path()}: {exc}"
            ) from exc

    def entries(self, size: int) -> Iterator[tuple[int, bytes]]:
        """Every entry of a tree of ``size``, with its index, in order."""
        for ref in entry_bundles_for_size(size):
            for offset, entry in enumerate(self.entry_bundle(ref)):
                yield ref.start + offset, entry

    def entry(self, index: int) -> bytes:
        """The entry at ``index`` (below the checkpoint's size)."""
        size = self.checkpoint().size
        if not 0 <= index < size:
            raise AuditError(f"index {index} is not below the bundle's size {size}")
        number, offset = divmod(index, TILE_WIDTH)
        width = min(TILE_WIDTH, size - number * TILE_WIDTH)
        return self.entry_bundle(TileRef(0, number, width, entries=True))[offset]

    def tile(self, ref: TileRef) -> list[bytes]:
        data = self._read(ref)
        try:
            return split_tile(data, ref.width)
        except AuditError as exc:
            raise VerificationFailed(-1, f"{ref.path()}: {exc}") from exc

    def stored_hashes(self, level: int, start: int, stop: int) -> list[bytes]:
        """Hashes ``[start, stop)`` of ``level`` read from the tiles (a LevelReader)."""
        out: list[bytes] = []
        position = start
        while position < stop:
            number, offset = divmod(position, TILE_WIDTH)
            take = min(stop - position, TILE_WIDTH - offset)
            ref = TileRef(level, number, self._width_at(level, number))
            out.extend(self.tile(ref)[offset : offset + take])
            position += take
        return out

    def _width_at(self, level: int, number: int) -> int:
        hashes = self.checkpoint().size >> (TILE_HEIGHT * level)
        return min(TILE_WIDTH, hashes - number * TILE_WIDTH)

    def subtree_hash(self, start: int, end: int) -> bytes:
        """MTH of entries ``[start, end)`` from the bundle's stored tiles."""
        return subtree_hash(self, start, end, TILE_HEIGHT)


def decodable_prefix(data: bytes) -> int:
    """How many whole entries a damaged bundle holds before the damage."""
    count = offset = 0
    while offset + 2 <= len(data):
        length = int.from_bytes(data[offset : offset + 2], "big")
        if offset + 2 + length > len(data):
            break
        offset += 2 + length
        count += 1
    return count
