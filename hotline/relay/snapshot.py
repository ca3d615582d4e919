"""Relay-state snapshots: what a restart would rebuild from the log, saved beside it.

The relay saves its core state and its per-link figures in
``<data>/relay-state.snapshot`` every few thousand entries and when it stops,
so a restart replays only the entries logged after the snapshot. The file::

    b"hotline-relay-snapshot/1\\n"
    sha256(payload)              32 bytes
    Ed25519 signature            64 bytes, by the relay key, over the 32 bytes above
    payload                      MessagePack: {"size", "root", "network_sha256", "kid",
                                               "core", "figures", "relay"}

A snapshot is never trusted, only matched. The relay uses it only if the file
is whole (the digest holds), it was signed by the relay's current key, it was
made for the same ``network.toml`` (its SHA-256), it covers no more entries
than the log holds, and the log's tree of its first ``size`` entries has the
snapshot's ``root``. Anything else is discarded with a ``snapshot_discarded``
event naming why, and the state is rebuilt from the whole log.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgpack

from hotline.auditlog.diskio import create_file
from hotline.errors import SnapshotMismatch
from hotline.protocol.keys import PublicKey, SigningKey

__all__ = ["SNAPSHOT_FILE", "Snapshot", "decode_snapshot", "encode_snapshot", "load_snapshot",
           "save_snapshot"]

SNAPSHOT_FILE: Final = "relay-state.snapshot"
_MAGIC: Final = b"hotline-relay-snapshot/1\n"
_DIGEST: Final = 32
_SIGNATURE: Final = 64


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A relay's state after its first ``size`` log entries, whose tree root is ``root``."""

    size: int
    root: bytes
    network_sha256: bytes
    core: dict[str, Any]
    figures: dict[str, Any]
    relay: dict[str, Any]


def encode_snapshot(snapshot: Snapshot, key: SigningKey) -> bytes:
    payload: bytes = msgpack.packb({
        "size": snapshot.size, "root": snapshot.root, "network_sha256": snapshot.network_sha256,
        "kid": key.public.kid, "core": snapshot.core, "figures": snapshot.figures,
        "relay": snapshot.relay,
    }, use_bin_type=True)
    digest = hashlib.sha256(payload).digest()
    return _MAGIC + digest + key.sign(digest) + payload


def save_snapshot(path: Path, snapshot: Snapshot, key: SigningKey) -> int:
    """Write ``snapshot`` to ``path`` atomically and durably; returns its size in bytes."""
    data = encode_snapshot(snapshot, key)
    create_file(path, data)
    return len(data)


def decode_snapshot(data: bytes, key: PublicKey, network_sha256: bytes) -> Snapshot:
    """The snapshot in ``data``; SnapshotMismatch unless whole, ours and for this network."""
    head = len(_MAGIC) + _DIGEST + _SIGNATURE
    if not data.startswith(_MAGIC) or len(data) < head:
        raise SnapshotMismatch("not a relay snapshot of this version")
    digest = data[len(_MAGIC):len(_MAGIC) + _DIGEST]
    signature = data[len(_MAGIC) + _DIGEST:head]
    payload = data[head:]
    if hashlib.sha256(payload).digest() != digest:
        raise SnapshotMismatch("its contents do not match its digest (torn or altered)")
    if not key.verify(signature, digest):
        raise SnapshotMismatch("it is not signed by the relay's current key")
    try:
        fields = msgpack.unpackb(payload, raw=False, strict_map_key=False)
        snapshot = Snapshot(
            size=int(fields["size"]), root=bytes(fields["root"]),
            network_sha256=bytes(fields["network_sha256"]), core=dict(fields["core"]),
            figures=dict(fields["figures"]), relay=dict(fields["relay"]),
        )
    except (ValueError, TypeError, KeyError, msgpack.UnpackException) as exc:
        raise SnapshotMismatch(f"its payload does not parse: {exc}") from exc
    if snapshot.network_sha256 != network_sha256:
        raise SnapshotMismatch("it was made for another network.toml")
    return snapshot


def load_snapshot(path: Path, key: PublicKey, network_sha256: bytes) -> Snapshot | None:
    """The snapshot at ``path``, None if there is none; SnapshotMismatch as decode_snapshot."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SnapshotMismatch(f"it cannot be read: {exc}") from exc
    return decode_snapshot(data, key, network_sha256)
