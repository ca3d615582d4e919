"""A log append the disk refuses: its sender is answered busy, and nothing is lost or doubled.

A real relay on loopback, on its real file store; the fault is injected at the store seam:
one fsync of the batch holding a warning fails once, as a full or failing disk does (the
segment's: the warning is not in the log; or, once the segment is synced, a derived
file's: the warning turns out durable).
"""

from __future__ import annotations

import asyncio
import errno
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from hotline.auditlog.filestore import FileStore
from hotline.auditlog.leaf import decode_entry
from hotline.auditlog.log import CHECKPOINT_FILE, STORE_DIR, AuditLog
from hotline.endpoint.events import MessageAccepted, RelayConnected, RelayDisconnected
from hotline.endpoint.service import EndpointConfig, serve_endpoint
from hotline.network import Network
from hotline.protocol.bodies import AcceptedBody, RefusedBody, WarningBody
from hotline.protocol.envelope import open_envelope
from hotline.protocol.session import Accepted, RejectedNotice
from hotline.relay.server import (
    BUSY_RETRY_MS,
    NOT_READY_CLOSE,
    Relay,
    RelayConfig,
    RunningRelay,
    create_app,
    start_relay,
)
from tests.cluster.test_replicas import _warning_to
from tests.factories import TestNet
from tests.feeds.helpers import next_event
from tests.relay.client import TIMEOUT, RawClient
from tests.relay.conftest import Author, relay_config
from tests.relay.test_slow_reader import Events, captured_events


def _fail_fsync_of_batch_holding(
    store: FileStore, frame: bytes | Callable[[bytes], bool], monkeypatch: pytest.MonkeyPatch,
    *, segment: bool = True,
) -> list[int]:
    """Make one fsync of the first batch holding ``frame`` (or an entry it accepts) fail
    (EIO): the segment's, or (``segment`` False) a derived file's, once the records are
    synced (persisting the frontier).

    Returns the sizes of the batches that failed (filled in by the writer thread).
    """
    def holds(entry: bytes) -> bool:
        return frame(entry) if callable(frame) else frame in entry

    real_append, real_fsync = store.append_batch, os.fsync
    writer: list[int] = []  # the thread writing that batch, while it is armed
    failed: list[int] = []

    def fsync(fd: int) -> None:
        if writer == [threading.get_ident()] and (
            Path(f"/proc/self/fd/{fd}").readlink().suffix == ".seg") == segment:
            writer.clear()
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    def append_batch(entries: Sequence[bytes]) -> int:
        if not failed and any(holds(entry) for entry in entries):
            failed.append(len(entries))
            writer.append(threading.get_ident())
        return real_append(entries)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(store, "append_batch", append_batch)
    return failed


async def _resent(net: TestNet, relay: RunningRelay, frame: bytes) -> AcceptedBody:
    """BY sends ``frame`` again on a new session; the accepted receipt it is answered with."""
    async with RawClient(net, "BY", relay.ws_url) as again:
        await again.send(frame)
        answer = await again.accepted()
    assert isinstance(answer, Accepted)
    receipt = open_envelope(answer.frame, net.network).body
    assert isinstance(receipt, AcceptedBody)
    return receipt


def _indexes_holding(data: Path, net: TestNet, message_id: bytes) -> list[int]:
    """The indexes of the entries holding ``message_id`` in the (closed) relay's store,
    which must verify whole."""
    with FileStore(data / "store") as reopened:
        reopened.verify()
        entries = reopened.read_range(0, reopened.size)
    return [i for i, entry in enumerate(entries)
            if (decoded := decode_entry(entry)).envelope is not None
            and open_envelope(decoded.envelope, net.network).body.id == message_id]


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
                receipt = await _resent(net, relay, frame)
                assert receipt.ref == warning.id
                index = receipt.index
                message = await asyncio.wait_for(clt.delivered(), TIMEOUT)  # tests skipped
                assert message.index == index
                assert open_envelope(message.frame, net.network).body.id == warning.id
        finally:
            await relay.stop()
    names = [e["event"] for e in events.seen]
    for name in ("append_failed", "log_store_stopped", "append_failed_answered_busy",
                 "store_recovered", "log_store_recovered"):
        assert name in names
    assert names.index("append_failed_answered_busy") < names.index("log_store_recovered")
    assert _indexes_holding(data, net, warning.id) == [index]


async def _started_on(config: RelayConfig, store: FileStore) -> RunningRelay:
    """A relay on loopback whose log is on ``store`` (as start_relay, with the store given)."""
    audit_log = AuditLog(store, origin=config.network.relay.origin, key=config.key,
                         checkpoint_path=config.data_dir / CHECKPOINT_FILE)
    relay = Relay(config, audit_log)
    await relay.start()
    runner = web.AppRunner(create_app(relay), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, 0)
    await site.start()
    return RunningRelay(relay, runner, int(runner.addresses[0][1]))


async def test_a_warning_found_durable_after_its_write_failed_is_delivered_and_logged_once(
    net: TestNet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that failed after the warning's record was synced (persisting the frontier):
    the sender is answered busy, but the recovered store holds the warning, so the relay
    applies it (delivered to its recipient) and answers the resend with its receipt."""
    data = tmp_path / "relay"
    config = relay_config(net, data)
    data.mkdir()
    store = FileStore(data / STORE_DIR, persist_entries=1)  # each batch persists the frontier
    with captured_events() as events:
        relay = await _started_on(config, store)
        try:
            by = Author("BY")
            async with RawClient(net, "LT", relay.ws_url) as clt:
                async with RawClient(net, "BY", relay.ws_url) as cby:
                    warning = by.warning()
                    frame = cby.seal(warning)
                    failed = _fail_fsync_of_batch_holding(store, frame, monkeypatch,
                                                          segment=False)
                    await cby.send(frame)
                    refused = await cby.accepted()
                    assert isinstance(refused, RejectedNotice)
                    assert refused.code == "busy"
                    assert await cby.closed_by_relay() == NOT_READY_CLOSE
                assert failed
                found = await events.wait_for("log_entries_found_durable")
                message = await asyncio.wait_for(clt.delivered(), TIMEOUT)  # tests skipped
                assert open_envelope(message.frame, net.network).body.id == warning.id
                await events.wait_for("log_store_recovered")
                receipt = await _resent(net, relay, frame)
                assert (receipt.ref, receipt.index) == (warning.id, message.index)
        finally:
            await relay.stop()
    assert found["first"] <= message.index < found["size"]
    assert _indexes_holding(data, net, warning.id) == [message.index]


def _is_warning(network: Network) -> Callable[[bytes], bool]:
    def holds(entry: bytes) -> bool:
        envelope = decode_entry(entry).envelope
        return envelope is not None and isinstance(
            open_envelope(envelope, network).body, WarningBody)
    return holds


async def test_an_endpoint_whose_warning_was_answered_busy_sends_it_again_and_it_is_accepted(
    net: TestNet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The endpoint client, told busy and closed 1013 after the disk failed its warning's
    write, keeps the warning in its outbox, sends it again once the relay can log, and has
    it accepted; the recipient gets it, and the log holds it once."""
    data = tmp_path / "relay"
    relay = await start_relay(relay_config(net, data))
    store = relay.relay.log.store
    assert isinstance(store, FileStore)
    try:
        config = EndpointConfig(network=net.network, endpoint_id="BY", key=net.keys["BY"],
                                data_dir=tmp_path / "BY", relay_urls=(relay.ws_url,),
                                tick_s=0.1)
        async with serve_endpoint(config) as by, RawClient(net, "LT", relay.ws_url) as clt:
            events = by.endpoint.hub.subscribe()
            if not by.endpoint.connected:
                await next_event(events, lambda e: isinstance(e, RelayConnected), TIMEOUT)
            failed = _fail_fsync_of_batch_holding(store, _is_warning(net.network), monkeypatch)
            sent = await by.endpoint.post_message(_warning_to("LT"))
            closed = await next_event(events, lambda e: isinstance(e, RelayDisconnected),
                                      TIMEOUT)
            assert isinstance(closed, RelayDisconnected)
            assert f"({NOT_READY_CLOSE}:" in closed.reason
            accepted = await next_event(
                events, lambda e: isinstance(e, MessageAccepted) and e.id == sent, TIMEOUT)
            assert isinstance(accepted, MessageAccepted)
            assert failed
            message = await asyncio.wait_for(clt.delivered(), TIMEOUT)  # tests skipped
            assert open_envelope(message.frame, net.network).body.id == sent
    finally:
        await relay.stop()
    assert _indexes_holding(data, net, sent) == [message.index]


def fail_every_fsync_under(
    root: Path, monkeypatch: pytest.MonkeyPatch, *, suffix: str = "",
) -> threading.Event:
    """Make every fsync of a file under ``root`` (named ``*suffix``) fail (EIO) until the
    returned event is set: a disk that stays down for a while, then comes back."""
    back = threading.Event()
    real_fsync = os.fsync
    root = root.resolve()

    def fsync(fd: int) -> None:
        path = Path(f"/proc/self/fd/{fd}").readlink()
        if not back.is_set() and path.is_relative_to(root) and path.name.endswith(suffix):
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return back


async def _owed(events: Events, kind: str) -> dict[str, Any]:
    """The ``event_not_logged`` note for the first event of ``kind`` whose write failed."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            for event in events.seen:
                if event.get("event") == "event_not_logged" and event.get("kind") == kind:
                    return event
            events.changed.clear()
            await events.changed.wait()


def _sessions_of(data: Path, party: str) -> list[tuple[str, int]]:
    """``party``'s connected and disconnected entries in the (closed) relay's store."""
    with FileStore(data / STORE_DIR) as reopened:
        entries = [decode_entry(e) for e in reopened.read_range(0, reopened.size)]
    return [(e.kind.value, e.relay_ts) for e in entries
            if e.event is not None and e.event.fields.get("party") == party]


async def test_a_session_that_ended_while_the_disk_was_down_is_logged_in_order_once_it_is_back(
    net: TestNet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BY's session is closed because the disk failed its warning; its ``disconnected``
    cannot be written then. Once the disk is back it is logged with the time it happened,
    before the ``connected`` of BY's next session, so the log tells the outage."""
    data = tmp_path / "relay"
    with captured_events() as events:
        relay = await start_relay(relay_config(net, data))
        try:
            async with RawClient(net, "BY", relay.ws_url) as cby:
                back = fail_every_fsync_under(data, monkeypatch)
                await cby.send(cby.seal(Author("BY").warning()))
                assert await cby.closed_by_relay() == NOT_READY_CLOSE
            # BY's connected may have shared the warning's failed batch: owed too, first
            owed = await _owed(events, "disconnected")
            back.set()
            await events.wait_for("log_store_recovered")
            async with RawClient(net, "BY", relay.ws_url):
                pass
        finally:
            await relay.stop()
    sessions = _sessions_of(data, "BY")
    assert [kind for kind, _ in sessions] == ["connected", "disconnected"] * 2
    assert sessions[1][1] == owed["relay_ts"]
    assert sessions[1][1] <= sessions[2][1]
