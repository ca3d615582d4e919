"""Two relay replicas on one JetStream stream: delivery across replicas, one log, failover."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from hotline.auditlog.checkpoint import open_checkpoint
from hotline.auditlog.filestore import FileStore
from hotline.auditlog.leaf import decode_entry
from hotline.auditlog.log import CHECKPOINT_FILE, STORE_DIR
from hotline.auditlog.streamconfig import StreamSettings
from hotline.endpoint.events import MessageReceived, ReceiptStored, RelayConnected
from hotline.endpoint.service import EndpointConfig, serve_endpoint
from hotline.protocol.bodies import Body, LinkTestBody, ReceiptBody
from hotline.protocol.envelope import body_hash, open_envelope
from hotline.protocol.schema import encode_body
from hotline.protocol.session import Accepted, Deliver
from hotline.protocol.vocab import Stage
from hotline.relay.replica import Replica
from hotline.relay.server import RunningRelay, start_relay
from tests.factories import TestNet
from tests.feeds.helpers import next_event
from tests.relay.client import RawClient
from tests.relay.conftest import Author, relay_config

pytestmark = pytest.mark.slow

TIMEOUT = 20.0
STOP_S = 60.0
"""A replica's stop is bounded well below this (its NATS client's drain included)."""



@contextlib.asynccontextmanager
async def replica(
    net: TestNet, data: Path, settings: StreamSettings, name: str
) -> AsyncIterator[RunningRelay]:
    config = replace(relay_config(net, data), stream=settings, replica_name=name)
    running = await start_relay(config)
    try:
        yield running
    finally:
        try:
            async with asyncio.timeout(STOP_S):
                await running.stop()
        except TimeoutError:
            pytest.fail(f"replica {name} did not stop within {STOP_S:.0f} s")


def mirror_entries(data: Path) -> list[bytes]:
    with FileStore(data / STORE_DIR) as store:
        return store.read_range(0, store.size)


async def test_a_warning_through_one_replica_reaches_a_recipient_on_the_other(
    net: TestNet, settings: StreamSettings, tmp_path: Path
) -> None:
    """BY on replica 1 warns LT on replica 2; LT's delivered receipt comes back to BY."""
    by = Author("BY")
    lt = Author("LT")
    async with (
        replica(net, tmp_path / "r1", settings, "r1") as r1,
        replica(net, tmp_path / "r2", settings, "r2") as r2,
        RawClient(net, "BY", r1.ws_url) as by_client,
        RawClient(net, "LT", r2.ws_url) as lt_client,
    ):
        warning = by.warning(to=("LT",))
        await by_client.send(by_client.seal(warning))
        accepted = await by_client.accepted()
        assert isinstance(accepted, Accepted)
        delivered = await lt_client.delivered()
        assert open_envelope(delivered.frame, net.network).body.id == warning.id
        await lt_client.send(lt_client.seal(lt.receipt(warning)))
        assert isinstance(await lt_client.accepted(), Accepted)
        receipt = await by_client.delivered()
        body = open_envelope(receipt.frame, net.network).body
        assert getattr(body, "ref", None) == warning.id
        assert getattr(body, "stage", None) is Stage.DELIVERED


async def test_a_message_resent_to_the_other_replica_is_logged_once(
    net: TestNet, settings: StreamSettings, tmp_path: Path
) -> None:
    """The same envelope sent to both replicas gets byte-identical receipts and one log entry."""
    by = Author("BY")
    async with (
        replica(net, tmp_path / "r1", settings, "r1") as r1,
        replica(net, tmp_path / "r2", settings, "r2") as r2,
    ):
        warning = by.warning(to=("LT",))
        async with RawClient(net, "BY", r1.ws_url) as first:
            frame = first.seal(warning)
            await first.send(frame)
            original = await first.accepted()
        async with RawClient(net, "BY", r2.ws_url) as second:
            await second.send(frame)
            again = await second.accepted()
        assert isinstance(original, Accepted)
        assert isinstance(again, Accepted)
        assert again.frame == original.frame
    entries = mirror_entries(tmp_path / "r1")
    assert sum(frame in entry for entry in entries) == 1


async def test_replicas_hold_one_history_and_sign_one_root_per_size(
    net: TestNet, settings: StreamSettings, tmp_path: Path
) -> None:
    """After traffic through both replicas their mirrors agree and each checkpoint fits both."""
    by = Author("BY")
    async with (
        replica(net, tmp_path / "r1", settings, "r1") as r1,
        replica(net, tmp_path / "r2", settings, "r2") as r2,
        RawClient(net, "BY", r1.ws_url) as on_r1,
    ):
        for number in range(20):
            await on_r1.send(on_r1.seal(by.warning(to=("LT",) if number % 2 else ("LV",))))
            assert isinstance(await on_r1.accepted(), Accepted)
        assert r1.relay.replica is not None
        assert r2.relay.replica is not None
        assert await r2.relay.replica.wait_applied(r1.relay.replica.size, TIMEOUT)
    first, second = mirror_entries(tmp_path / "r1"), mirror_entries(tmp_path / "r2")
    common = min(len(first), len(second))
    assert common > 20
    assert first[:common] == second[:common]
    relay = net.network.relay
    for data in ("r1", "r2"):
        note = (tmp_path / data / CHECKPOINT_FILE).read_bytes()
        checkpoint = open_checkpoint(note, relay.origin, relay.public_key)
        for other in ("r1", "r2"):
            with FileStore(tmp_path / other / STORE_DIR) as store:
                if store.size >= checkpoint.size:
                    assert store.subtree_hash(0, checkpoint.size) == checkpoint.root


async def test_an_endpoint_fails_over_to_the_other_replica_and_keeps_delivering(
    net: TestNet, settings: StreamSettings, tmp_path: Path
) -> None:
    """BY, configured with both replicas, moves to replica 2 within seconds when 1 stops."""
    r1 = await start_relay(replace(relay_config(net, tmp_path / "r1"), stream=settings,
                                   replica_name="r1"))
    r1_running = True
    try:
        async with replica(net, tmp_path / "r2", settings, "r2") as r2:
            by_config = EndpointConfig(
                network=net.network, endpoint_id="BY", key=net.keys["BY"],
                data_dir=tmp_path / "BY", relay_urls=(r1.ws_url, r2.ws_url), tick_s=0.1,
            )
            lt_config = EndpointConfig(
                network=net.network, endpoint_id="LT", key=net.keys["LT"],
                data_dir=tmp_path / "LT", relay_urls=(r2.ws_url,), tick_s=0.1,
            )
            async with serve_endpoint(by_config) as by, serve_endpoint(lt_config) as lt:
                by_events = by.endpoint.hub.subscribe()
                lt_events = lt.endpoint.hub.subscribe()
                if not by.endpoint.connected:
                    await next_event(by_events, lambda e: isinstance(e, RelayConnected), TIMEOUT)
                assert by.endpoint.relay_url_now == r1.ws_url
                await r1.stop()
                r1_running = False
                stopped = time.monotonic()
                await next_event(by_events, lambda e: isinstance(e, RelayConnected), TIMEOUT)
                assert time.monotonic() - stopped < 5.0
                assert by.endpoint.relay_url_now == r2.ws_url
                sent = await by.endpoint.post_message(_warning_to("LT"))
                received = await next_event(
                    lt_events,
                    lambda e: isinstance(e, MessageReceived) and e.body.id == sent,
                    TIMEOUT,
                )
                assert isinstance(received, MessageReceived)
                stored = await next_event(
                    by_events,
                    lambda e: isinstance(e, ReceiptStored) and e.ref == sent,
                    TIMEOUT,
                )
                assert isinstance(stored, ReceiptStored)
    finally:
        if r1_running:
            await r1.stop()


def _warning_to(party: str) -> dict[str, object]:
    now = time.time_ns() // 1_000_000
    return {
        "t": "warning", "to": [party], "status": "exercise", "precedence": "flash",
        "track": {"lat": 54.3, "lon": 25.9, "observed_at": now, "object": "uav",
                  "confidence": 0.5, "source": "radar"},
        "expires": now + 600_000,
    }


def relay_test_seqs(store_entries: list[bytes], net: TestNet) -> list[int]:
    """The signed ``seq`` of every relay link test in the log, in log order."""
    seqs = []
    for data in store_entries:
        frame = decode_entry(data).envelope
        if frame is None:
            continue
        body = open_envelope(frame, net.network).body
        if isinstance(body, LinkTestBody):
            seqs.append(body.seq)
    return seqs


async def applied_until(one: Replica, condition: Callable[[], bool]) -> None:
    """Wait (TIMEOUT) until ``condition`` holds after the replica applies stream entries.

    The replicas log link tests every few tens of ms (a 200 ms interval spread
    over the endpoints), so replica 1 applies entries, and checks the condition
    again, several times a second.
    """
    assert await one.wait_applied_until(condition, TIMEOUT)


async def test_a_link_test_that_waited_behind_a_later_one_is_withdrawn(
    net: TestNet, settings: StreamSettings, tmp_path: Path
) -> None:
    """Replica 1's tests wait while replica 2 logs later-signed ones: the relay's seq still rises.

    Replica 1's test publisher is held (its lock is the seam) while both sign link
    tests every 200 ms; once replica 1 has followed tests of replica 2 signed after
    its own queued one, the queued test must be withdrawn, not logged out of order.
    """
    quick = TestNet(replace(net.network, link_test_interval_ms=200), net.keys)
    async with (
        replica(quick, tmp_path / "r1", settings, "r1") as r1,
        replica(quick, tmp_path / "r2", settings, "r2") as r2,
        RawClient(quick, "BY", r1.ws_url),
        RawClient(quick, "LT", r2.ws_url),
    ):
        one = r1.relay.replica
        assert one is not None
        store = r1.relay.log.store

        def queued_tests() -> int:
            return one.unlogged_tests

        def logged_tests() -> int:
            return len(relay_test_seqs(store.read_range(0, store.size), quick))

        async with one.link_tests_held():
            await applied_until(one, lambda: queued_tests() >= 1)
            logged = logged_tests()
            await applied_until(one, lambda: logged_tests() >= logged + 3)
        await applied_until(one, lambda: queued_tests() == 0)
        seqs = relay_test_seqs(store.read_range(0, store.size), quick)
    assert len(seqs) >= 3
    assert seqs == sorted(set(seqs)), "the relay's link-test seq fell in log order"


def logged_bodies(store_entries: list[bytes], net: TestNet) -> list[Body]:
    """The body of every envelope in the log, in log order."""
    bodies = []
    for data in store_entries:
        frame = decode_entry(data).envelope
        if frame is not None:
            bodies.append(open_envelope(frame, net.network).body)
    return bodies


def link_tests_to(bodies: list[Body], party: str) -> list[LinkTestBody]:
    return [b for b in bodies if isinstance(b, LinkTestBody) and b.to == (party,)]


def answered(bodies: list[Body]) -> set[bytes]:
    """The ids of the link tests (or messages) a delivered receipt in the log answers."""
    return {b.ref for b in bodies if isinstance(b, ReceiptBody) and b.stage is Stage.DELIVERED}


async def test_an_endpoint_on_no_replica_gets_one_logged_link_test_per_interval(
    net: TestNet, settings: StreamSettings, tmp_path: Path
) -> None:
    """LV, connected to neither replica, is tested once a slot, unanswered: its outage shows."""
    quick = TestNet(replace(net.network, link_test_interval_ms=200), net.keys)
    async with (
        replica(quick, tmp_path / "r1", settings, "r1") as r1,
        replica(quick, tmp_path / "r2", settings, "r2"),
    ):
        one = r1.relay.replica
        assert one is not None
        store = r1.relay.log.store
        core = r1.relay.core

        def lv_tests() -> list[LinkTestBody]:
            return link_tests_to(logged_bodies(store.read_range(0, store.size), quick), "LV")

        await applied_until(one, lambda: len(lv_tests()) >= 15)
        entries = store.read_range(0, store.size)
    bodies = logged_bodies(entries, quick)
    tests = link_tests_to(bodies, "LV")
    slots = [core.test_slot_start("LV", test.ts) for test in tests]
    assert len(set(slots)) == len(slots), "two link tests logged for one slot"
    span = (slots[-1] - slots[0]) // 200 + 1
    assert len(slots) >= span - 2, f"{span} slots, only {len(slots)} tested"
    assert not {test.id for test in tests} & answered(bodies)
    seqs = relay_test_seqs(entries, quick)
    assert seqs == sorted(set(seqs)), "the relay's link-test seq fell in log order"


async def test_a_link_test_reaches_its_endpoint_through_its_replica_and_is_answered(
    net: TestNet, settings: StreamSettings, tmp_path: Path
) -> None:
    """LT on replica 2 gets each slot's one logged test, whoever logged it, and answers it."""
    quick = TestNet(replace(net.network, link_test_interval_ms=200), net.keys)
    lt = Author("LT")
    received: list[LinkTestBody] = []
    async with (
        replica(quick, tmp_path / "r1", settings, "r1") as r1,
        replica(quick, tmp_path / "r2", settings, "r2") as r2,
        RawClient(quick, "LT", r2.ws_url) as lt_client,
    ):
        one = r1.relay.replica
        assert one is not None
        store = r1.relay.log.store
        core = r1.relay.core

        async def answer() -> None:
            while True:
                deliver = await lt_client.next(Deliver)
                assert isinstance(deliver, Deliver)
                body = open_envelope(deliver.frame, quick.network).body
                if not isinstance(body, LinkTestBody):
                    continue
                received.append(body)
                receipt = ReceiptBody(
                    **lt.header(),  # type: ignore[arg-type]
                    kid=b"\x00" * 8, ref=body.id, hash=body_hash(encode_body(body)),
                    stage=Stage.DELIVERED,
                )
                await lt_client.send(lt_client.seal(receipt))

        answering = asyncio.create_task(answer())
        try:
            def answered_tests() -> int:
                bodies = logged_bodies(store.read_range(0, store.size), quick)
                return len({t.id for t in link_tests_to(bodies, "LT")} & answered(bodies))

            await applied_until(one, lambda: answered_tests() >= 10)
        finally:
            answering.cancel()
            await asyncio.wait({answering}, timeout=TIMEOUT)
            assert answering.done(), "the task answering LT's link tests went on when cancelled"
            with contextlib.suppress(asyncio.CancelledError):
                await answering
        entries = store.read_range(0, store.size)
        assert r2.relay.replica is not None
    bodies = logged_bodies(entries, quick)
    tests = link_tests_to(bodies, "LT")
    slots = [core.test_slot_start("LT", test.ts) for test in tests]
    assert len(set(slots)) == len(slots), "two link tests logged for one slot"
    logged_ids = [test.id for test in tests]
    assert received, "no link test reached LT"
    first = logged_ids.index(received[0].id)
    assert [body.id for body in received] == logged_ids[first:first + len(received)], (
        "LT got a test that was not logged, or missed a logged one, or got one twice"
    )
    assert len(received) >= 10
    assert {body.id for body in received} <= answered(bodies) | {received[-1].id}
    seqs = relay_test_seqs(entries, quick)
    assert seqs == sorted(set(seqs)), "the relay's link-test seq fell in log order"
