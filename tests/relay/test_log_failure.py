"""A log append the disk refuses: its sender is answered busy, and nothing is lost or doubled.

A real relay on loopback, on its real file store; the fault is injected at the store seam:
the fsync of the batch holding one warning fails once, as a full or failing disk does.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import pytest

from hotline.auditlog.filestore import FileStore
from hotline.auditlog.leaf import decode_entry
from hotline.protocol.bodies import AcceptedBody, RefusedBody
from hotline.protocol.envelope import open_envelope
from hotline.protocol.session import Accepted, RejectedNotice
from hotline.relay.server import BUSY_RETRY_MS, NOT_READY_CLOSE, start_relay
from tests.factories import TestNet
from tests.relay.client import RawClient
from tests.relay.conftest import Author, relay_config
from tests.relay.test_slow_reader import captured_events


def _fail_fsync_of_batch_holding(
    store: FileStore, frame: bytes, monkeypatch: pytest.MonkeyPatch
) -> list[int]:
    """Make the segment fsync of the first batch that holds ``frame`` fail once (EIO).

    Returns the sizes of the batches that failed (filled in by the writer thread).
    """
    real_append, real_fsync = store.append_batch, os.fsync
    failing: list[bool] = []
    failed: list[int] = []

    def fsync(fd: int) -> None:
        if failing and Path(f"/proc/self/fd/{fd}").readlink().suffix == ".seg":
            failing.clear()
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    def append_batch(entries: Sequence[bytes]) -> int:
        if not failed and any(frame in entry for entry in entries):
            failed.append(len(entries))
            failing.append(True)
        return real_append(entries)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(store, "append_batch", append_batch)
    return failed


async def test_a_warning_whose_append_failed_is_answered_busy_then_logged_once_when_resent(
    net: TestNet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sender gets busy and its session is closed 1013; the relay is not ready until the
    store recovers; the same frame resent on a new session is accepted and delivered, and the
    log holds it once, with nothing of the failed write left in the store."""
    data = tmp_path / "relay"
    with captured_events() as events:
        relay = await start_relay(relay_config(net, data))
        try:
            store = relay.relay.log.store
            assert isinstance(store, FileStore)
            by = Author("BY")
            async with RawClient(net, "LT", relay.ws_url) as clt:
                async with RawClient(net, "BY", relay.ws_url) as cby:
                    warning = by.warning()
                    frame = cby.seal(warning)
                    failed = _fail_fsync_of_batch_holding(store, frame, monkeypatch)
                    await cby.send(frame)
                    refused = await cby.accepted()
                    assert isinstance(refused, RejectedNotice)
                    assert (refused.code, refused.ref) == ("busy", warning.id)
                    refusal = open_envelope(refused.frame, net.network).body
                    assert isinstance(refusal, RefusedBody)
                    assert refusal.retry_after_ms == BUSY_RETRY_MS
                    assert await cby.closed_by_relay() == NOT_READY_CLOSE
                assert failed
                await events.wait_for("log_store_recovered")
                async with aiohttp.ClientSession() as http, \
                        http.get(relay.http_url + "/healthz") as health:
                    assert health.status == 200
                async with RawClient(net, "BY", relay.ws_url) as again:
                    await again.send(frame)
                    answer = await again.accepted()
                    assert isinstance(answer, Accepted)
                    receipt = open_envelope(answer.frame, net.network).body
                    assert isinstance(receipt, AcceptedBody)
                    assert receipt.ref == warning.id
                    index = receipt.index
                    message = await clt.delivered()
                    assert message.index == index
                    assert open_envelope(message.frame, net.network).body.id == warning.id
        finally:
            await relay.stop()
    names = [e["event"] for e in events.seen]
    for name in ("append_failed", "log_store_unready", "append_failed_answered_busy",
                 "store_recovered", "log_store_recovered"):
        assert name in names
    assert names.index("append_failed_answered_busy") < names.index("log_store_recovered")
    with FileStore(data / "store") as reopened:
        reopened.verify()
        entries = reopened.read_range(0, reopened.size)
    holding = [i for i, entry in enumerate(entries)
               if (decoded := decode_entry(entry)).envelope is not None
               and open_envelope(decoded.envelope, net.network).body.id == warning.id]
    assert holding == [index]
