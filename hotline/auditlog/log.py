"""The relay's audit log: durable appends and signed checkpoints that never disagree.

An :class:`AuditLog` joins a :class:`~hotline.auditlog.store.LogStore`, a
:class:`~hotline.auditlog.groupcommit.GroupCommitter` and the relay's key.

Invariants:

- an index is handed out only once its entry is durable (group commit);
- a checkpoint covers only durable entries, and is itself made durable
  (written, fsynced, renamed into place) before anyone sees it;
- the log never signs a checkpoint inconsistent with one it signed before:
  on open, the store must hold at least as many entries as the last signed
  checkpoint and its tree at that size must have the signed root; otherwise
  the log refuses to open (:class:`~hotline.errors.StoreError`) instead of
  papering over lost or altered entries;
- while the relay rotates its key, every checkpoint is signed by the current
  key and by each other key given in ``also_sign`` (one signature line each),
  and a checkpoint signed before by any of ``known_keys`` is read back.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import structlog

from hotline.auditlog.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from hotline.auditlog.diskio import create_file
from hotline.auditlog.filestore import FileStore
from hotline.auditlog.groupcommit import Done, GroupCommitter
from hotline.auditlog.merkle import consistency_proof, inclusion_proof
from hotline.auditlog.store import LogStore, Recoverable
from hotline.auditlog.tiles import TILE_WIDTH, encode_entry_bundle, tile_hashes
from hotline.errors import NoteError, StoreError, UsageError
from hotline.protocol.keys import PublicKey, SigningKey

__all__ = ["CHECKPOINT_FILE", "STORE_DIR", "AuditLog"]

CHECKPOINT_FILE: Final = "checkpoint"
STORE_DIR: Final = "store"

log = structlog.get_logger()


class AuditLog:
    """Appends entries durably and signs checkpoints of the tree over them."""

    def __init__(
        self,
        store: LogStore,
        *,
        origin: str,
        key: SigningKey,
        checkpoint_path: Path | None = None,
        also_sign: Sequence[SigningKey] = (),
        known_keys: Sequence[PublicKey] = (),
    ) -> None:
        self.store: Final = store
        self.origin: Final = origin
        self._key = key
        self._also_sign = tuple(also_sign)
        signers = [key.public, *(k.public for k in also_sign)]
        self._known = tuple(dict.fromkeys([*signers, *known_keys]))
        self._checkpoint_path = checkpoint_path
        self._committer = GroupCommitter(store)
        self._signed: bytes | None = None
        self._note_lock = threading.Lock()  # one writer of the checkpoint file at a time
        self._signed_size = -1
        self._signed_root = b""
        if checkpoint_path is not None and checkpoint_path.exists():
            self._adopt(checkpoint_path.read_bytes())

    @classmethod
    def open_directory(
        cls,
        directory: Path,
        *,
        origin: str,
        key: SigningKey,
        also_sign: Sequence[SigningKey] = (),
        known_keys: Sequence[PublicKey] = (),
    ) -> AuditLog:
        """The file-backed log in ``directory`` (``store/`` and ``checkpoint``)."""
        directory.mkdir(parents=True, exist_ok=True)
        store = FileStore(directory / STORE_DIR)
        try:
            return cls(
                store, origin=origin, key=key, checkpoint_path=directory / CHECKPOINT_FILE,
                also_sign=also_sign, known_keys=known_keys,
            )
        except BaseException:
            store.close()
            raise

    def _adopt(self, note: bytes) -> None:
        try:
            checkpoint = open_checkpoint(note, self.origin, self._known)
        except NoteError as exc:
            raise StoreError(
                f"the last signed checkpoint cannot be read back ({exc}); refusing to open"
            ) from exc
        size = self.store.size
        if size < checkpoint.size:
            raise StoreError(
                f"the store holds {size} entries but a checkpoint of size {checkpoint.size} "
                "was signed: entries were lost or truncated; refusing to open"
            )
        if checkpoint.size and self.store.subtree_hash(0, checkpoint.size) != checkpoint.root:
            raise StoreError(
                f"the store's tree at size {checkpoint.size} does not match the signed "
                "checkpoint: the store was altered; refusing to open"
            )
        self._signed = note
        self._signed_size = checkpoint.size
        self._signed_root = checkpoint.root

    @property
    def size(self) -> int:
        return self.store.size

    @property
    def committer(self) -> GroupCommitter:
        return self._committer

    async def append(self, entry: bytes) -> int:
        """Append one entry; returns its index once it is durable."""
        return await self._committer.append(entry)

    def append_then(self, entry: bytes, done: Done) -> None:
        """Queue one entry; ``done`` gets its index once it is durable, in queue order."""
        self._committer.append_then(entry, done)

    async def recover(self) -> None:
        """After a failed write stopped the group committer: recover the store in place
        (see ``Recoverable``); :meth:`resume` then appends through a new committer.

        Nothing to do while the committer runs. Raises ``StoreError`` if the store
        cannot recover yet (try again later); appends are refused until :meth:`resume`.
        """
        stopped = self._committer
        if not stopped.failure:
            return
        await stopped.close()  # its writer has returned already: this frees its thread
        if isinstance(self.store, Recoverable):
            await asyncio.to_thread(self.store.recover)

    def resume(self) -> None:
        """Append through a new group committer once :meth:`recover` returned."""
        if self._committer.failure:
            self._committer = GroupCommitter(self.store)
            log.info("log_resumed", size=self.store.size)

    def checkpoint(self) -> bytes:
        """The latest signed checkpoint, signing a new one if the tree grew.

        Blocking (it fsyncs): call it off the event loop. Thread-safe: a relay
        stopping signs its last checkpoint while a cancelled tick's thread may
        still be signing one; the two never write the file at once.
        """
        with self._note_lock:
            return self._checkpoint()

    def _checkpoint(self) -> bytes:
        frontier = self.store.frontier()
        size = frontier.size
        if self._signed is not None and size == self._signed_size:
            return self._signed
        root = frontier.root()
        note = sign_checkpoint(
            Checkpoint(self.origin, size, root), self.origin, [self._key, *self._also_sign]
        )
        if self._checkpoint_path is not None:
            create_file(self._checkpoint_path, note)
        self._signed, self._signed_size, self._signed_root = note, size, root
        log.info("checkpoint_signed", size=size, root=root.hex())
        return note

    def replace_checkpoint_note(self, old: bytes, new: bytes) -> None:
        """Swap the latest note for the same checkpoint with more (co)signatures on it.

        ``new`` must carry the log's own signature on the same text as ``old``;
        nothing else may change. Blocking (it fsyncs).
        """
        with self._note_lock:
            if old != self._signed:
                return
            checkpoint = open_checkpoint(new, self.origin, self._known)
            if checkpoint.size != self._signed_size or not new.startswith(
                old.split(b"\n\n")[0]
            ):
                raise UsageError("a replacement note must sign the same checkpoint")
            if self._checkpoint_path is not None:
                create_file(self._checkpoint_path, new)
            self._signed = new

    def stop_signing_with(self, retired: Sequence[PublicKey]) -> None:
        """Sign no further checkpoint with these keys (their period has ended)."""
        self._also_sign = tuple(k for k in self._also_sign if k.public not in retired)

    @property
    def signing_keys(self) -> tuple[PublicKey, ...]:
        """The keys the next checkpoint is signed with, the current one first."""
        return (self._key.public, *(k.public for k in self._also_sign))

    @property
    def signed_root(self) -> bytes:
        """The root of the latest signed checkpoint (empty before the first)."""
        return self._signed_root

    @property
    def signed_size(self) -> int:
        """The size of the latest signed checkpoint (-1 before the first)."""
        return self._signed_size

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        self._check_size(size)
        if not 0 <= index < size:
            raise UsageError(f"index {index} is not below the tree size {size}")
        return inclusion_proof(index, size, self.store.subtree_hash)

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        self._check_size(new)
        if not 0 < old <= new:
            raise UsageError(f"a consistency proof needs 0 < old ({old}) <= new ({new})")
        return consistency_proof(old, new, self.store.subtree_hash)

    def tile(self, level: int, number: int, width: int) -> bytes:
        """The hash tile ``tile/<level>/<number>`` of the given width."""
        self._check_tile(level, number, width)
        return tile_hashes(level, number, width, self.store.subtree_hash)

    def entry_bundle(self, number: int, width: int) -> bytes:
        self._check_tile(0, number, width)
        start = number * TILE_WIDTH
        return encode_entry_bundle(self.store.read_range(start, start + width))

    def _check_size(self, size: int) -> None:
        if not 0 < size <= self.store.size:
            raise UsageError(f"tree size {size} is not between 1 and {self.store.size}")

    def _check_tile(self, level: int, number: int, width: int) -> None:
        if not 1 <= width <= TILE_WIDTH:
            raise UsageError(f"tile width {width} is not between 1 and 256")
        span = TILE_WIDTH**level
        if (number * TILE_WIDTH + width) * span > self.store.size:
            raise UsageError(f"tile {level}/{number} of width {width} is beyond the tree")

    async def close(self) -> None:
        await self._committer.close()
        self.store.close()

