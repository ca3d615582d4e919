"""A client whose NATS node hangs reconnects to another node, never straight back to it, and
resends what waited; its replica judges readiness around that."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse

import pytest
from nats.aio.client import Server

from hotline.auditlog.natsstore import RECONNECT_WAIT_S, StreamClient
from hotline.auditlog.streamconfig import StreamSettings
from hotline.cluster.natsnodes import LoopbackCluster
from hotline.errors import StoreError
from hotline.protocol.bodies import WarningBody
from hotline.relay.replica import PUBLISH_STALL_S, RESEND_GRACE_S, Replica
from hotline.relay.server import start_relay
from tests.cluster.conftest import fresh_settings
from tests.cluster.test_replicas import logged_bodies
from tests.factories import make_network
from tests.relay.client import RawClient
from tests.relay.conftest import LINKS, Author, relay_config

A, B, C = "127.0.0.1:4001", "127.0.0.1:4002", "127.0.0.1:4003"


def _servers(*netlocs: str) -> list[Server]:
    return [Server(urlparse(f"nats://{netloc}")) for netloc in netlocs]


def test_the_server_used_or_tried_least_recently_is_chosen() -> None:
    """Just left A (hung), B tried a moment ago: C, at once; then B; A only last."""
    client = StreamClient(StreamSettings(("nats://" + A,)))
    now = time.monotonic()
    client._used = {A: now, B: now - 1.0}  # A left now, B tried a second ago, C never
    chosen, pause = client._next_server(_servers(A, B, C), {})
    assert (chosen.uri.netloc, pause) == (C, 0.0)
    assert client._next_server(_servers(A, B, C), {})[0].uri.netloc == B
    assert client._next_server(_servers(A, B, C), {})[0].uri.netloc == A


def test_a_server_tried_a_moment_ago_is_tried_again_only_after_a_pause() -> None:
    """Every server down: the round goes on, pausing instead of spinning."""
    client = StreamClient(StreamSettings(("nats://" + A,)))
    client._next_server(_servers(A), {})
    chosen, pause = client._next_server(_servers(A), {})
    assert chosen.uri.netloc == A
    assert 0.0 < pause <= RECONNECT_WAIT_S


async def test_a_client_that_reaches_no_server_gives_up_at_start_with_a_clear_error() -> None:
    """Every server unreachable, connect() ends within its wait with a StoreError saying so
    (nats-py alone tries for ever), and leaves nothing connected."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    client = StreamClient(StreamSettings((f"nats://127.0.0.1:{port}",)))
    with pytest.raises(StoreError, match="no server accepted a connection within 1 s"):
        await asyncio.wait_for(client.connect(wait_s=1.0), 10)
    assert not client.connected


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_a_client_leaves_its_hung_node_for_another_and_publishes(
    nats_cluster: LoopbackCluster,
) -> None:
    """Its node frozen (not the stream's leader: that would add an election): the client
    reconnects to another node, not the frozen one again, and its publish is acknowledged."""
    settings = fresh_settings(nats_cluster)
    setup = StreamClient(settings, name="reconnect-setup")
    await setup.connect()
    await setup.ensure_stream()
    await setup.publish(b"first", msg_id="first")  # acknowledged: the stream has a leader
    info = await setup.js.stream_info(settings.stream)
    leader = info.cluster.leader if info.cluster is not None else None
    assert leader is not None
    followers = tuple(n.url for n in nats_cluster.nodes if n.name != leader)
    client = StreamClient(replace(settings, servers=followers), name="reconnect-test")
    await client.connect()
    hung = client.server
    node = next(n for n in nats_cluster.nodes if n.url.endswith(hung))
    nats_cluster.freeze(node)
    try:
        published = await client.publish(b"entry", msg_id="after-the-freeze")
        assert published is not None
        assert client.server not in ("", hung)
        assert client.reconnected_at > 0
        assert client._used[hung] < client._used[client.server]  # not tried again meanwhile
    finally:
        nats_cluster.thaw(node)
        await client.close()
        await setup.delete_stream()
        await setup.close()


def _ready(replica: Replica) -> bool:
    return replica.ready  # read anew each time (mypy would narrow the attribute)


@pytest.mark.slow
async def test_a_ready_replica_gives_resent_publishes_a_moment_a_not_ready_one_none(
    nats_cluster: LoopbackCluster, tmp_path: Path
) -> None:
    """A publish stalled past PUBLISH_STALL_S right after a reconnection: still ready for
    RESEND_GRACE_S, not ready after it, and a reconnection then does not make it ready."""
    net = make_network(links=LINKS)
    config = replace(relay_config(net, tmp_path / "r1"), stream=fresh_settings(nats_cluster),
                     replica_name="r1")
    running = await start_relay(config)
    try:
        one = running.relay.replica
        assert one is not None
        assert _ready(one)
        now = time.monotonic()
        one._in_flight[-1] = now - PUBLISH_STALL_S - 0.2  # sent before the reconnection
        one.client.reconnected_at = now - RESEND_GRACE_S / 2
        one._judge(now)
        assert _ready(one)
        one._judge(now + RESEND_GRACE_S)
        assert not _ready(one)
        one.client.reconnected_at = now + RESEND_GRACE_S
        one._judge(now + RESEND_GRACE_S + 0.1)
        assert not _ready(one)
        del one._in_flight[-1]
    finally:
        await running.stop()


@pytest.mark.slow
async def test_a_replica_is_not_ready_when_one_acknowledged_entry_waits_not_while_some_arrive(
    nats_cluster: LoopbackCluster, tmp_path: Path
) -> None:
    """Behind the stream for 2 s but the oldest unapplied entry acknowledged 0.5 s ago:
    ready (entries keep arriving); one acknowledged 1.5 s ago and not applied: not ready."""
    net = make_network(links=LINKS)
    config = replace(relay_config(net, tmp_path / "r1"), stream=fresh_settings(nats_cluster),
                     replica_name="r1")
    running = await start_relay(config)
    try:
        one = running.relay.replica
        assert one is not None
        now = time.monotonic()
        ahead = one.size + 1_000  # never applied while the test runs
        acked = one._acked_seq
        one._acked_seq = ahead
        one._behind_since = now - 2.0  # the stream ahead of the mirror for 2 s
        one._unapplied.clear()  # what the relay's start logged may not be applied yet
        one._unapplied.append((ahead, now - 0.5))
        one._last_refollow = now  # no new consumer from this test
        one._judge(now)
        assert _ready(one)
        one._judge(now + PUBLISH_STALL_S - 0.4)
        assert not _ready(one)
        assert "acknowledged entry" in one.not_ready_reason
        one._unapplied.clear()
        one._acked_seq = acked
        one._behind_since = None
    finally:
        await running.stop()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_a_backlog_sent_again_after_a_reconnection_is_logged_once_in_order(
    nats_cluster: LoopbackCluster, tmp_path: Path
) -> None:
    """BY's 20 warnings reach a replica just as its NATS node hangs: the replica reconnects,
    sends what waited again, and the log holds each once, in BY's order."""
    net = make_network(links=LINKS)
    settings = fresh_settings(nats_cluster)
    config = replace(relay_config(net, tmp_path / "r1"), stream=settings, replica_name="r1")
    first = await start_relay(config)  # logs relay_started: the stream has a leader
    assert first.relay.replica is not None
    info = await first.relay.replica.client.js.stream_info(settings.stream)
    leader = info.cluster.leader if info.cluster is not None else None
    await first.stop()
    followers = tuple(n.url for n in nats_cluster.nodes if n.name != leader)
    running = await start_relay(replace(config, stream=replace(settings, servers=followers)))
    node = None
    try:
        one = running.relay.replica
        assert one is not None
        node = next(n for n in nats_cluster.nodes if n.url.endswith(one.client.server))
        by = Author("BY")
        warnings = [by.warning(to=("LT",)) for _ in range(20)]
        async with RawClient(net, "BY", running.ws_url) as client:
            nats_cluster.freeze(node)
            for warning in warnings:
                await client.send(client.seal(warning))
            assert running.relay.log is not None
            store = running.relay.log.store

            def logged() -> list[bytes]:
                return [b.id for b in logged_bodies(store.read_range(0, store.size), net)
                        if isinstance(b, WarningBody) and b.sender == "BY"]

            async with asyncio.timeout(30), one._applied:
                await one._applied.wait_for(lambda: len(logged()) >= len(warnings))
        assert one.client.reconnected_at > 0
        assert logged() == [w.id for w in warnings]
    finally:
        if node is not None:
            nats_cluster.thaw(node)
        await running.stop()


@pytest.mark.slow
async def test_a_publish_that_times_out_on_a_live_server_does_not_leave_it(
    nats_cluster: LoopbackCluster,
) -> None:
    """No acknowledgement (a listener that never answers, as in an election) but the node
    answers the client's ping: the client stays on it, and the publish fails in its budget."""
    settings = replace(fresh_settings(nats_cluster), timeout_s=0.5)
    client = StreamClient(settings, name="probe-test")
    await client.connect()
    listener = await client.js._nc.subscribe(settings.entry_subject)  # hears, never answers
    server = client.server
    try:
        with pytest.raises(StoreError, match="publishing entry silent"):
            await client.publish(b"entry", msg_id="silent")
        assert client._probe is not None  # the server was asked
        await client._probe
        assert client.server == server
        assert client.reconnected_at == 0.0
    finally:
        await listener.unsubscribe()
        await client.close()


@pytest.mark.slow
async def test_a_replica_not_ready_is_ready_again_only_well_under_the_bound(
    nats_cluster: LoopbackCluster, tmp_path: Path
) -> None:
    """Not ready at a publish PUBLISH_STALL_S old; still not ready at two thirds of it (no
    flapping around the bound); ready once the oldest wait is under half of it."""
    net = make_network(links=LINKS)
    config = replace(relay_config(net, tmp_path / "r1"), stream=fresh_settings(nats_cluster),
                     replica_name="r1")
    running = await start_relay(config)
    try:
        one = running.relay.replica
        assert one is not None
        now = time.monotonic()
        one._unapplied.clear()
        one._in_flight[-1] = now - PUBLISH_STALL_S
        one._judge(now)
        assert not _ready(one)
        one._in_flight[-1] = now - PUBLISH_STALL_S * 2 / 3
        one._judge(now)
        assert not _ready(one)
        one._in_flight[-1] = now - PUBLISH_STALL_S / 3
        one._judge(now)
        assert _ready(one)
        del one._in_flight[-1]
    finally:
        await running.stop()
