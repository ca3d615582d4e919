"""Replicas chaining a sender's envelopes (see hotline/relay/replica.py): what an endpoint
racing two replicas must not get logged, after the race itself is over.

Real replicas on a real three-node NATS cluster; each pair is sent to the two replicas at
once, so that each admits its own before it has seen the other's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from hotline.auditlog.natsstore import Published
from hotline.auditlog.streamconfig import StreamSettings
from hotline.protocol.session import Accepted, RejectedNotice
from hotline.relay.replica import CHAIN_WAIT_S
from hotline.relay.server import RunningRelay
from tests.cluster.test_replica_races import _findings
from tests.cluster.test_replicas import mirror_entries, replica
from tests.factories import TestNet
from tests.relay.client import RawClient
from tests.relay.conftest import Author

pytestmark = pytest.mark.slow

ROUNDS = 8
STEP = 100
"""How far each round moves the sender's ``seq`` on."""
ANSWER_S = 4 * CHAIN_WAIT_S


async def _caught_up(*replicas: RunningRelay) -> None:
    """Every replica has applied all the others have."""
    size = max(r.relay.replica.size for r in replicas if r.relay.replica is not None)
    for r in replicas:
        assert r.relay.replica is not None
        assert await r.relay.replica.wait_applied(size, 10.0)


class _Sessions(contextlib.AsyncExitStack):
    """One open session of a party per replica, opened again once the relay closed it (it
    does after a ``busy``): a replica admits only a few sessions of a party a minute."""

    def __init__(self, net: TestNet, party: str) -> None:
        super().__init__()
        self.net, self.party = net, party
        self._open: dict[str, RawClient] = {}

    async def on(self, relay: RunningRelay) -> RawClient:
        client = self._open.get(relay.ws_url)
        if client is None or client.ws is None or client.ws.closed:
            client = await self.enter_async_context(RawClient(self.net, self.party,
                                                              relay.ws_url))
            self._open[relay.ws_url] = client
        return client


@contextlib.asynccontextmanager
async def _started(
    net: TestNet, settings: StreamSettings, tmp_path: Path, by: Author
) -> AsyncIterator[tuple[RunningRelay, RunningRelay, _Sessions]]:
    """Replicas r1 and r2, BY's sessions on them, and one warning of BY logged through r1."""
    async with (
        replica(net, tmp_path / "r1", settings, "r1") as r1,
        replica(net, tmp_path / "r2", settings, "r2") as r2,
        _Sessions(net, "BY") as sessions,
    ):
        first = await sessions.on(r1)
        await first.send(first.seal(by.warning()))
        assert isinstance(await first.accepted(), Accepted)
        yield r1, r2, sessions


async def _in_order(client: RawClient, *frames: bytes) -> None:
    for frame in frames:
        await client.send(frame)


async def _answer_or_close(client: RawClient) -> None:
    """The next answer, or the relay closing the session (after a ``busy``)."""
    answer = asyncio.ensure_future(client.accepted())
    closed = asyncio.ensure_future(client.closed_by_relay())
    await asyncio.wait([answer, closed], return_when=asyncio.FIRST_COMPLETED)
    for task in (answer, closed):
        task.cancel()
    await asyncio.gather(answer, closed, return_exceptions=True)


async def test_a_lost_race_does_not_lower_the_seq_the_loser_replica_admits_above(
    net: TestNet, settings: StreamSettings, tmp_path: Path
) -> None:
    """BY sends seq b+5 to one replica and seq b+10 to the other at once; whichever loses
    is answered busy. That replica has followed the winner, so a warning of seq b+3 sent
    to it afterwards is refused, and neither mirror holds a finding."""
    by = Author("BY")
    async with _started(net, settings, tmp_path, by) as (r1, r2, sessions):
        lost_races = 0
        for _ in range(ROUNDS):
            await _caught_up(r1, r2)
            base = by.seq
            b1, b2 = await sessions.on(r1), await sessions.on(r2)
            low = replace(by.warning(), seq=base + 5)
            high = replace(by.warning(), seq=base + 10)
            await asyncio.gather(b1.send(b1.seal(low)), b2.send(b2.seal(high)))
            answers = await asyncio.gather(b1.accepted(), b2.accepted())
            by.seq = base + STEP
            busy = [i for i, a in enumerate(answers)
                    if isinstance(a, RejectedNotice) and a.code == "busy"]
            if not busy:
                continue
            lost_races += 1
            await (b1, b2)[busy[0]].closed_by_relay()
            await _caught_up(r1, r2)
            again = await sessions.on((r1, r2)[busy[0]])
            await again.send(again.seal(replace(by.warning(), seq=base + 3)))
            answer = await again.accepted()
            assert isinstance(answer, RejectedNotice), \
                f"seq {base + 3} accepted after seq {base + 5} or {base + 10} was logged"
        assert lost_races > 0, "no race was lost: the pairs did not overlap"
    for name in ("r1", "r2"):
        assert _findings(net, mirror_entries(tmp_path / name)) == []


async def test_an_id_reused_with_another_seq_does_not_chain_a_later_envelope_wrongly(
    net: TestNet, settings: StreamSettings, tmp_path: Path
) -> None:
    """BY sends a warning of seq b+10 to one replica and, at once, another warning with the
    same id but seq b+5, then a warning of seq b+7, to the other. The envelope of seq b+7
    was admitted after b+5, which was not logged: it must not be logged after b+10."""
    by = Author("BY")
    async with _started(net, settings, tmp_path, by) as (r1, r2, sessions):
        for _ in range(ROUNDS):
            await _caught_up(r1, r2)
            base = by.seq
            b1, b2 = await sessions.on(r1), await sessions.on(r2)
            high = replace(by.warning(), seq=base + 10)
            low = replace(by.warning(), seq=base + 5, id=high.id)
            later = replace(by.warning(), seq=base + 7)
            await asyncio.gather(b1.send(b1.seal(high)),
                                 _in_order(b2, b2.seal(low), b2.seal(later)))
            await asyncio.gather(_answer_or_close(b1), _answer_or_close(b2))
            await _answer_or_close(b2)
            by.seq = base + STEP
    for name in ("r1", "r2"):
        assert _findings(net, mirror_entries(tmp_path / name)) == []


async def test_an_envelope_whose_name_was_applied_before_it_was_published_is_answered(
    net: TestNet, settings: StreamSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BY sends two warnings to r2; the acknowledgement of the first is slow to come back,
    and meanwhile r1 logs another warning of BY as the first one's successor, which r2
    follows. r2's second warning names the same predecessor: it is answered (busy), not
    left waiting for good."""
    by = Author("BY")
    async with _started(net, settings, tmp_path, by) as (r1, r2, sessions):
        await _caught_up(r1, r2)
        assert r1.relay.replica is not None
        assert r2.relay.replica is not None
        stream = r2.relay.replica
        release = asyncio.Event()
        publish = stream.client.publish

        async def slow_ack(
            entry: bytes, *, msg_id: str, test_after: int | None = None
        ) -> Published | None:
            """The stream stores the entry at once; its acknowledgement reaches r2 late."""
            published = await publish(entry, msg_id=msg_id, test_after=test_after)
            if msg_id.startswith("env-BY-"):
                await release.wait()
            return published

        def seq_followed(running: RunningRelay, seq: int) -> Callable[[], bool]:
            return lambda: running.relay.core.admission.last_seq_of("BY") == seq

        monkeypatch.setattr(stream.client, "publish", slow_ack)
        b2 = await sessions.on(r2)
        stored = by.warning()
        await b2.send(b2.seal(stored))
        await b2.send(b2.seal(by.warning()))
        # r1 follows r2's first warning, then logs another one as its successor
        assert await r1.relay.replica.wait_applied_until(seq_followed(r1, stored.seq), 10.0)
        b1 = await sessions.on(r1)
        other = by.warning()
        await b1.send(b1.seal(other))
        assert isinstance(await b1.accepted(), Accepted)
        assert await stream.wait_applied_until(seq_followed(r2, other.seq), 10.0)
        release.set()
        assert isinstance(await b2.accepted(), Accepted)  # its first
        try:
            async with asyncio.timeout(ANSWER_S):  # link tests keep the session busy
                answer = await b2.accepted()
        except TimeoutError:
            pytest.fail(f"the second warning was not answered within {ANSWER_S:.0f} s")
        assert isinstance(answer, RejectedNotice)
        assert answer.code == "busy"
    for name in ("r1", "r2"):
        assert _findings(net, mirror_entries(tmp_path / name)) == []


async def test_a_replica_stopped_with_an_envelope_unpublished_takes_it_again_after_restart(
    net: TestNet, settings: StreamSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """r2 is stopped while BY's warning cannot reach the stream, so it was never logged;
    restarted, r2 takes that warning again when BY resends it, and chains BY's envelopes
    after the last one logged: the log holds no finding."""
    by = Author("BY")
    async with replica(net, tmp_path / "r1", settings, "r1") as r1:
        async with replica(net, tmp_path / "r2", settings, "r2") as r2:
            async with RawClient(net, "BY", r1.ws_url) as b1:
                await b1.send(b1.seal(by.warning()))
                assert isinstance(await b1.accepted(), Accepted)
            await _caught_up(r1, r2)
            assert r2.relay.replica is not None
            client = r2.relay.replica.client
            publish = client.publish
            never = asyncio.Event()

            async def unreachable(
                entry: bytes, *, msg_id: str, test_after: int | None = None
            ) -> Published | None:
                """The stream cannot be reached for BY's envelopes."""
                if msg_id.startswith("env-BY-"):
                    await never.wait()
                return await publish(entry, msg_id=msg_id, test_after=test_after)

            monkeypatch.setattr(client, "publish", unreachable)
            unlogged = by.warning()
            async with RawClient(net, "BY", r2.ws_url) as b2:
                frame = b2.seal(unlogged)
                await b2.send(frame)
                assert await r2.relay.replica.wait_applied_until(
                    lambda: r2.relay.core.admission.last_seq_of("BY") == unlogged.seq, 10.0)
        async with replica(net, tmp_path / "r2", settings, "r2") as r2, \
                RawClient(net, "BY", r2.ws_url) as b2:
            await b2.send(frame)
            answer = await b2.accepted()
            assert isinstance(answer, Accepted), answer
    for name in ("r1", "r2"):
        assert _findings(net, mirror_entries(tmp_path / name)) == []
