"""The relay's audit log: durable appends, signed checkpoints that never disagree."""

from __future__ import annotations

import asyncio
import itertools
import shutil
from pathlib import Path

import pytest

from hotline.auditlog.checkpoint import open_checkpoint
from hotline.auditlog.log import CHECKPOINT_FILE, STORE_DIR, AuditLog
from hotline.auditlog.memstore import MemoryStore
from hotline.auditlog.merkle import leaf_hash, root_of, verify_consistency, verify_inclusion
from hotline.auditlog.tiles import decode_entry_bundle, split_tile
from hotline.errors import StoreError, UsageError
from tests.auditlog.logs import entries_for, write_log
from tests.factories import make_network

NET = make_network()
ORIGIN = NET.network.relay.origin
KEY = NET.keys["relay"]


def _open(directory: Path) -> AuditLog:
    return AuditLog.open_directory(directory, origin=ORIGIN, key=KEY)


async def test_concurrent_appends_get_consecutive_indexes_and_a_signed_root() -> None:
    """Appends get indexes 0..n-1 in call order; the checkpoint signs their root."""
    log = AuditLog(MemoryStore(), origin=ORIGIN, key=KEY)
    entries = [bytes([i]) * (i + 1) for i in range(40)]
    indexes = await asyncio.gather(*(log.append(e) for e in entries))
    assert indexes == list(range(40))
    checkpoint = open_checkpoint(log.checkpoint(), ORIGIN, KEY.public)
    assert checkpoint.size == 40
    assert checkpoint.root == root_of([leaf_hash(e) for e in entries])
    await log.close()


async def test_an_unchanged_tree_keeps_its_checkpoint() -> None:
    """No new entries, no new signature: the same note is returned."""
    log = AuditLog(MemoryStore(), origin=ORIGIN, key=KEY)
    await log.append(b"one")
    first = log.checkpoint()
    assert log.checkpoint() is first
    await log.append(b"two")
    assert log.checkpoint() != first
    await log.close()


async def test_successive_checkpoints_are_consistent() -> None:
    """Every checkpoint the log signs extends the one before it."""
    log = AuditLog(MemoryStore(), origin=ORIGIN, key=KEY)
    signed = []
    for batch in range(5):
        await asyncio.gather(*(log.append(b"%d-%d" % (batch, i)) for i in range(batch * 7 + 1)))
        signed.append(open_checkpoint(log.checkpoint(), ORIGIN, KEY.public))
    for old, new in itertools.pairwise(signed):
        proof = log.consistency_proof(old.size, new.size)
        verify_consistency(old.size, new.size, old.root, new.root, proof)
    await log.close()


async def test_proofs_and_tiles_agree_with_the_entries() -> None:
    """Inclusion proofs verify against the signed root; tiles hold the leaf hashes."""
    log = AuditLog(MemoryStore(), origin=ORIGIN, key=KEY)
    entries = [b"entry %d" % i for i in range(300)]
    for entry in entries:
        await log.append(entry)
    checkpoint = open_checkpoint(log.checkpoint(), ORIGIN, KEY.public)
    for index in (0, 255, 256, 299):
        proof = log.inclusion_proof(index, 300)
        verify_inclusion(leaf_hash(entries[index]), index, 300, proof, checkpoint.root)
    assert split_tile(log.tile(0, 1, 44), 44) == [leaf_hash(e) for e in entries[256:]]
    assert decode_entry_bundle(log.entry_bundle(0, 256), 256) == entries[:256]
    with pytest.raises(UsageError):
        log.tile(0, 1, 45)
    with pytest.raises(UsageError):
        log.inclusion_proof(300, 300)
    await log.close()


def test_a_file_log_reopens_with_its_checkpoint(tmp_path: Path) -> None:
    """After a restart the log holds the same entries and the same signed checkpoint."""
    entries = entries_for(NET, 120)
    write_log(tmp_path, NET, entries)
    note = (tmp_path / CHECKPOINT_FILE).read_bytes()

    async def reopen() -> bytes:
        log = _open(tmp_path)
        try:
            assert log.size == 120
            assert log.store.read(77) == entries[77]
            return await asyncio.to_thread(log.checkpoint)
        finally:
            await log.close()

    assert asyncio.run(reopen()) == note


def test_a_store_that_lost_entries_is_refused(tmp_path: Path) -> None:
    """A store smaller than the last signed checkpoint is never signed over."""
    write_log(tmp_path / "a", NET, entries_for(NET, 60))
    write_log(tmp_path / "b", NET, entries_for(NET, 30))
    shutil.copy(tmp_path / "a" / CHECKPOINT_FILE, tmp_path / "b" / CHECKPOINT_FILE)
    with pytest.raises(StoreError, match="holds 30 entries but a checkpoint of size 60"):
        _open(tmp_path / "b")


def test_an_altered_store_is_refused(tmp_path: Path) -> None:
    """A store whose tree differs from the signed checkpoint is never signed over."""
    write_log(tmp_path / "a", NET, entries_for(NET, 40))
    other = [e + b"" for e in entries_for(NET, 40)]
    other[5] = b"\x93\xa9connected\x00\x80"
    write_log(tmp_path / "b", NET, other)
    shutil.copy(tmp_path / "a" / CHECKPOINT_FILE, tmp_path / "b" / CHECKPOINT_FILE)
    with pytest.raises(StoreError, match="does not match the signed checkpoint"):
        _open(tmp_path / "b")


def test_a_checkpoint_from_another_key_is_refused(tmp_path: Path) -> None:
    """A checkpoint file the relay cannot verify stops the log from opening."""
    write_log(tmp_path, NET, entries_for(NET, 10))
    with pytest.raises(StoreError, match="cannot be read back"):
        AuditLog.open_directory(tmp_path, origin=ORIGIN, key=NET.keys["BY"])
    assert (tmp_path / STORE_DIR).is_dir()
