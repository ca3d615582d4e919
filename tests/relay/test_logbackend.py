"""The relay's own file store as its log backend: results in order (failures too), close()
waits for everything asked for, including appends asked for while a result is handed back,
and a store whose write failed is recovered without losing what became durable."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path

import pytest

from hotline.auditlog.filestore import FileStore
from hotline.auditlog.leaf import EntryKind, LogEvent, decode_entry, encode_event_entry
from hotline.auditlog.log import AuditLog
from hotline.auditlog.store import MAX_ENTRY_SIZE
from hotline.relay.core import Append
from hotline.relay.logbackend import EmbeddedLog
from tests.factories import seeded_key

TIMEOUT = 10.0
NOW = 1_764_000_000_000


def _entry(n: int) -> Append:
    event = LogEvent(EntryKind.CONNECTED, {"party": "LT"})
    return Append(encode_event_entry(NOW + n, event), n, event=event)


class ChainSink:
    """Like the relay: completing one append (a message logged) may ask for another (the
    redelivered event of a message whose retry came due)."""

    def __init__(self, chain: int) -> None:
        self.chain = chain
        self.backend: EmbeddedLog | None = None
        self.logged_at: list[tuple[int, int]] = []

    def logged(self, append: Append, index: int) -> None:
        self.logged_at.append((append.token, index))
        if append.token < self.chain:
            assert self.backend is not None
            self.backend.append(_entry(append.token + 1))


async def test_close_waits_for_appends_asked_for_while_completing(tmp_path: Path) -> None:
    """close() returns once every append asked for before it returns is durable and handed
    back, those asked for by a completion included, each at the next index in turn."""
    audit_log = AuditLog.open_directory(tmp_path, origin="test.example/log",
                                        key=seeded_key("relay"))
    sink = ChainSink(chain=3)
    backend = EmbeddedLog(audit_log, sink)  # type: ignore[arg-type]
    sink.backend = backend
    await backend.open()
    backend.append(_entry(0))
    await asyncio.wait_for(backend.close(), TIMEOUT)
    assert sink.logged_at == [(0, 0), (1, 1), (2, 2), (3, 3)]
    await audit_log.close()
    audit_log.store.close()


class RecordingSink:
    """Records what the backend reports, in order; ``found`` is set when it hands back an
    entry it had reported failed."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, int, int | str]] = []
        self.found = asyncio.Event()

    def logged(self, append: Append, index: int) -> None:
        self.reports.append(("logged", append.token, index))

    def failed(self, append: Append, error: str) -> None:
        self.reports.append(("failed", append.token, error))

    def followed(self, index: int, entry: bytes) -> None:
        self.reports.append(("followed", decode_entry(entry).relay_ts - NOW, index))
        self.found.set()


async def test_a_refused_append_is_reported_in_order_with_the_others(tmp_path: Path) -> None:
    """An append refused at once (an entry too large) is reported failed after the appends
    asked for before it and before those asked for after it; the backend stays ready."""
    audit_log = AuditLog.open_directory(tmp_path, origin="test.example/log",
                                        key=seeded_key("relay"))
    sink = RecordingSink()
    backend = EmbeddedLog(audit_log, sink)  # type: ignore[arg-type]
    await backend.open()
    backend.append(_entry(0))
    backend.append(Append(b"\x00" * (MAX_ENTRY_SIZE + 1), 1))
    backend.append(_entry(2))
    await asyncio.wait_for(backend.close(), TIMEOUT)
    assert [(kind, token) for kind, token, _ in sink.reports] == [
        ("logged", 0), ("failed", 1), ("logged", 2)]
    assert backend.ready
    await audit_log.close()


async def test_entries_durable_despite_a_failed_write_are_handed_back_after_recovery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch whose entries became durable before its write failed (persisting the frontier)
    is reported failed, the backend is not ready, and once the store recovers those entries
    are handed back as followed at their indexes, and appends go on after them."""
    store = FileStore(tmp_path / "store", persist_entries=2)
    audit_log = AuditLog(store, origin="test.example/log", key=seeded_key("relay"))
    sink = RecordingSink()
    backend = EmbeddedLog(audit_log, sink)  # type: ignore[arg-type]
    await backend.open()
    real_fsync = os.fsync
    refused: list[int] = []

    def fsync(fd: int) -> None:
        if not refused and Path(f"/proc/self/fd/{fd}").readlink().suffix != ".seg":
            refused.append(fd)
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    backend.append(_entry(0))
    backend.append(_entry(1))
    await asyncio.wait_for(sink.found.wait(), TIMEOUT)
    assert refused
    assert backend.ready
    assert [(kind, token) for kind, token, _ in sink.reports] == [
        ("failed", 0), ("failed", 1), ("followed", 0), ("followed", 1)]
    assert [index for kind, _, index in sink.reports if kind == "followed"] == [0, 1]
    backend.append(_entry(2))
    await asyncio.wait_for(backend.close(), TIMEOUT)
    assert sink.reports[-1] == ("logged", 2, 2)
    await audit_log.close()
