"""A replica whose mirror of the log fails a write: not ready until the mirror recovers, then
every entry applied once, in order, as on the other replica.

Two real replicas on a real NATS cluster; the fault is injected at the store seam: one fsync
of the mirror's batch holding a warning fails (EIO), that of the segment (the records are not
kept) or, once the segment is synced, that of a derived file (the records are durable).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hotline.auditlog.filestore import FileStore
from hotline.auditlog.leaf import decode_entry
from hotline.auditlog.log import STORE_DIR
from hotline.auditlog.natsstore import StreamEntry
from hotline.auditlog.streamconfig import StreamSettings
from hotline.protocol.bodies import AcceptedBody
from hotline.protocol.envelope import open_envelope
from hotline.protocol.session import Accepted
from hotline.relay.replica import Replica
from hotline.relay.server import NOT_READY_CLOSE
from tests.cluster.test_replicas import mirror_entries, replica
from tests.factories import TestNet
from tests.relay.client import TIMEOUT, RawClient
from tests.relay.conftest import Author, relay_config
from tests.relay.test_log_failure import (
    _fail_fsync_of_batch_holding,
    _started_on,
    fail_every_fsync_under,
)
from tests.relay.test_slow_reader import Events, captured_events

pytestmark = pytest.mark.slow


async def _after(events: Events, first: str, then: str) -> dict[str, Any]:
    """The first event named ``then`` seen after the first one named ``first``."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            names = [event.get("event") for event in events.seen]
            if first in names:
                start = names.index(first)
                for event in events.seen[start + 1:]:
                    if event.get("event") == then:
                        return event
            events.changed.clear()
            await events.changed.wait()


def _holding(entries: list[bytes], net: TestNet, message_id: bytes) -> list[int]:
    """The indexes of the envelope entries carrying ``message_id``."""
    return [i for i, entry in enumerate(entries)
            if (decoded := decode_entry(entry)).envelope is not None
            and open_envelope(decoded.envelope, net.network).body.id == message_id]


@pytest.mark.parametrize("segment", [True, False], ids=["records-not-kept", "records-durable"])
async def test_a_replica_whose_mirror_failed_a_write_recovers_and_delivers_once(
    net: TestNet, settings: StreamSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    segment: bool,
) -> None:
    """BY on r1 warns LT on r2; r2's mirror fails the write holding the warning. r2 turns
    not ready (LT's session closed 1013), recovers its mirror in place, is ready again, and
    delivers the warning once at the index r1 accepted it at; r2's mirror is r1's."""
    data = tmp_path / "r2"
    data.mkdir()
    config = replace(relay_config(net, data), stream=settings, replica_name="r2")
    store = FileStore(data / STORE_DIR, persist_entries=1)  # each batch persists the frontier
    by = Author("BY")
    with captured_events() as events:
        async with replica(net, tmp_path / "r1", settings, "r1") as r1:
            r2 = await _started_on(config, store)
            try:
                async with RawClient(net, "BY", r1.ws_url) as cby:
                    async with RawClient(net, "LT", r2.ws_url) as clt:
                        warning = by.warning(to=("LT",))
                        frame = cby.seal(warning)
                        failed = _fail_fsync_of_batch_holding(store, frame, monkeypatch,
                                                              segment=segment)
                        await cby.send(frame)
                        accepted = await cby.accepted()
                        assert isinstance(accepted, Accepted)
                        receipt = open_envelope(accepted.frame, net.network).body
                        assert isinstance(receipt, AcceptedBody)
                        assert await clt.closed_by_relay() == NOT_READY_CLOSE
                    assert failed
                    await events.wait_for("replica_mirror_recovered")
                    await _after(events, "replica_mirror_write_failed", "replica_ready")
                    async with aiohttp.ClientSession() as http, \
                            http.get(r2.http_url + "/healthz") as health:
                        assert health.status == 200
                    async with RawClient(net, "LT", r2.ws_url) as again:
                        message = await asyncio.wait_for(again.delivered(), TIMEOUT)
                    assert open_envelope(message.frame, net.network).body.id == warning.id
                    assert message.index == receipt.index
            finally:
                await r2.stop()
    failure = next(e for e in events.seen if e.get("event") == "replica_mirror_write_failed")
    assert failure["replica"] == "r2"
    names = [e.get("event") for e in events.seen]
    assert names.index("replica_not_ready") < names.index("replica_mirror_recovered")
    mirrored, logged = mirror_entries(data), mirror_entries(tmp_path / "r1")
    assert mirrored == logged[: len(mirrored)]
    assert _holding(mirrored, net, warning.id) == [receipt.index]
    with FileStore(data / STORE_DIR) as reopened:
        reopened.verify()


async def test_a_replica_whose_mirror_never_recovers_stays_not_ready_and_stops(
    net: TestNet, settings: StreamSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """r2's disk fails every fsync of the mirror's segment from some point on: r2 stays not
    ready with the mirror as its reason, keeps trying, and still stops, bounded."""
    data = tmp_path / "r2"
    data.mkdir()
    config = replace(relay_config(net, data), stream=settings, replica_name="r2")
    store = FileStore(data / STORE_DIR, persist_entries=1)
    by = Author("BY")
    with captured_events() as events:
        async with replica(net, tmp_path / "r1", settings, "r1") as r1:
            r2 = await _started_on(config, store)
            try:
                fail_every_fsync_under(data, monkeypatch, suffix=".seg")  # never back
                async with RawClient(net, "BY", r1.ws_url) as cby:
                    await cby.send(cby.seal(by.warning(to=("LT",))))
                    assert isinstance(await cby.accepted(), Accepted)
                await events.wait_for("replica_mirror_write_failed")
                await events.wait_for("replica_mirror_recovery_retried")
                async with aiohttp.ClientSession() as http, \
                        http.get(r2.http_url + "/healthz") as health:
                    assert health.status == 503
                    assert "mirror failed a write" in await health.text()
            finally:
                async with asyncio.timeout(30):
                    await r2.stop()
    assert "replica_mirror_recovered" not in [e.get("event") for e in events.seen]


async def test_a_replica_whose_disk_is_down_stops_following_and_reads_what_it_missed_after(
    net: TestNet, settings: StreamSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While r2's mirror cannot write, what r1 logs does not pile up in r2's memory: r2 takes
    none of it in until its disk is back, then reads it from the stream, and its mirror is
    r1's log, in order."""
    data = tmp_path / "r2"
    data.mkdir()
    config = replace(relay_config(net, data), stream=settings, replica_name="r2")
    store = FileStore(data / STORE_DIR, persist_entries=1)
    by = Author("BY")
    taken_while_down: list[int] = []
    with captured_events() as events:
        async with replica(net, tmp_path / "r1", settings, "r1") as r1:
            r2 = await _started_on(config, store)
            backend = r2.relay.backend
            assert isinstance(backend, Replica)
            try:
                back = fail_every_fsync_under(data, monkeypatch, suffix=".seg")
                async with RawClient(net, "BY", r1.ws_url) as cby:
                    await cby.send(cby.seal(by.warning(to=("LT",))))
                    assert isinstance(await cby.accepted(), Accepted)
                    await events.wait_for("replica_mirror_recovery_retried")
                    real_put = backend._incoming.put_nowait

                    def put(item: tuple[int, StreamEntry]) -> None:
                        if not back.is_set():
                            taken_while_down.append(item[1].seq)
                        real_put(item)

                    monkeypatch.setattr(backend._incoming, "put_nowait", put)
                    for _ in range(30):
                        await cby.send(cby.seal(by.warning(to=("LT",))))
                        assert isinstance(await cby.accepted(), Accepted)
                logged = r1.relay.log.size
                back.set()
                await events.wait_for("replica_mirror_recovered")
                assert await backend.wait_applied(logged, TIMEOUT)
            finally:
                await r2.stop()
    assert taken_while_down == []
    mirrored = mirror_entries(data)
    assert mirrored == mirror_entries(tmp_path / "r1")[: len(mirrored)]
    assert len(mirrored) >= logged
