"""An endpoint with a session on each of two replicas, sending to both at once: the log the
replicas share keeps every rule the auditor checks, so no endpoint can make an honest
replicated relay log what the auditor would blame on the relay.

Real replicas on a real three-node NATS cluster. Each pair of envelopes is sent to the two
replicas at once, so that each admits its own before it has seen the other's.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from hotline.auditlog.leaf import decode_entry
from hotline.auditlog.rules import LogRules
from hotline.auditlog.streamconfig import StreamSettings
from hotline.protocol.bodies import ReceiptBody
from hotline.protocol.envelope import open_envelope
from hotline.protocol.session import Accepted, RejectedNotice
from tests.cluster.test_replicas import mirror_entries, replica
from tests.factories import TestNet
from tests.relay.client import RawClient
from tests.relay.conftest import Author

pytestmark = pytest.mark.slow

ROUNDS = 6


def _findings(net: TestNet, entries: list[bytes]) -> list[str]:
    rules = LogRules(net.network)
    return [f"{f.index} {f.rule}: {f.sentence}"
            for index, entry in enumerate(entries) for f in rules.entry(index, entry)]


def _receipts(net: TestNet, entries: list[bytes]) -> int:
    bodies = [open_envelope(decoded.envelope, net.network).body for entry in entries
              if (decoded := decode_entry(entry)).envelope is not None]
    return sum(isinstance(body, ReceiptBody) for body in bodies)


def _one_taken(answers: list[Accepted | RejectedNotice]) -> RejectedNotice:
    """One of the two answers accepts, the other refuses (busy, or replay once the other
    was seen): the refusal."""
    accepted = [a for a in answers if isinstance(a, Accepted)]
    refused = [a for a in answers if isinstance(a, RejectedNotice)]
    assert (len(accepted), len(refused)) == (1, 1), answers
    assert refused[0].code in ("busy", "replay"), refused[0]
    return refused[0]


async def test_an_endpoint_racing_two_replicas_cannot_get_a_finding_logged(
    net: TestNet, settings: StreamSettings, tmp_path: Path
) -> None:
    """BY sends two warnings of one seq, one to each replica at once; LT answers one
    warning with two delivered receipts, one to each replica at once. Each time one is
    logged and the other refused; neither replica's log holds a finding."""
    by, lt = Author("BY"), Author("LT")
    warnings = []
    async with (
        replica(net, tmp_path / "r1", settings, "r1") as r1,
        replica(net, tmp_path / "r2", settings, "r2") as r2,
    ):
        for _ in range(ROUNDS):
            async with RawClient(net, "BY", r1.ws_url) as b1, \
                    RawClient(net, "BY", r2.ws_url) as b2:
                first = by.warning(to=("LT",))
                second = replace(by.warning(to=("LT",)), seq=first.seq)
                await asyncio.gather(b1.send(b1.seal(first)), b2.send(b2.seal(second)))
                answers = list(await asyncio.gather(b1.accepted(), b2.accepted()))
                _one_taken(answers)
                warnings.append(first if isinstance(answers[0], Accepted) else second)
        for warning in warnings:
            async with RawClient(net, "LT", r1.ws_url) as l1, \
                    RawClient(net, "LT", r2.ws_url) as l2:
                one = lt.receipt(warning)
                other = replace(lt.receipt(warning), ts=one.ts + 1)
                await asyncio.gather(l1.send(l1.seal(one)), l2.send(l2.seal(other)))
                _one_taken(list(await asyncio.gather(l1.accepted(), l2.accepted())))
    for name in ("r1", "r2"):
        entries = mirror_entries(tmp_path / name)
        assert _findings(net, entries) == []
        assert _receipts(net, entries) == len(warnings)


async def test_one_envelope_sent_to_two_replicas_at_once_is_logged_once(
    net: TestNet, settings: StreamSettings, tmp_path: Path
) -> None:
    """An endpoint sending the same frame to both replicas at once (a failover overlapping
    its old session) gets the same accepted receipt from both, and the log holds it once."""
    by = Author("BY")
    async with (
        replica(net, tmp_path / "r1", settings, "r1") as r1,
        replica(net, tmp_path / "r2", settings, "r2") as r2,
        RawClient(net, "BY", r1.ws_url) as b1,
        RawClient(net, "BY", r2.ws_url) as b2,
    ):
        frames = []
        for _ in range(ROUNDS):
            frame = b1.seal(by.warning(to=("LT",)))
            frames.append(frame)
            await asyncio.gather(b1.send(frame), b2.send(frame))
            one, other = await asyncio.gather(b1.accepted(), b2.accepted())
            assert isinstance(one, Accepted)
            assert isinstance(other, Accepted)
            assert one.frame == other.frame
        follow_up = b2.seal(by.warning(to=("LT",)))
        await b2.send(follow_up)
        assert isinstance(await b2.accepted(), Accepted)
    entries = mirror_entries(tmp_path / "r1")
    assert [sum(frame in entry for entry in entries) for frame in frames] == [1] * ROUNDS
    assert _findings(net, entries) == []
