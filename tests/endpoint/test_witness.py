"""Witnessing: consistent checkpoints are cosigned, inconsistent ones raise alarms."""

from __future__ import annotations

import pytest

from hotline.auditlog.checkpoint import parse_checkpoint_text
from hotline.auditlog.cosignature import verify_cosignature
from hotline.auditlog.note import parse_note
from hotline.endpoint.core import EndpointCore, Output
from hotline.endpoint.events import (
    CheckpointInconsistent,
    CheckpointRefused,
    CheckpointWitnessed,
)
from hotline.endpoint.state import CoreState, HeldCheckpoint
from hotline.endpoint.witness import NeedsProof
from hotline.protocol.session import Cosign, decode_control
from tests.endpoint.builders import T0, Log, make_core
from tests.factories import TestNet, make_network


@pytest.fixture
def net() -> TestNet:
    return make_network()


def settle(core: EndpointCore, log: Log, size: int, now: int = T0) -> Output:
    """Feed a checkpoint note through the core, fetching the proof it asks for."""
    verdict = core.observe_checkpoint(log.note(size), now)
    while isinstance(verdict, NeedsProof):
        verdict = core.complete_checkpoint(
            verdict, log.proof(verdict.held.size, verdict.checkpoint.size), now
        )
    return verdict


def cosigned(net: TestNet, out: Output, note: bytes) -> None:
    """The output sends one cosign whose line verifies for LT on the note's checkpoint."""
    assert len(out.send) == 1
    control = decode_control(out.send[0])
    assert isinstance(control, Cosign)
    assert not control.line.endswith("\n")
    text = parse_note(note).text
    signature = parse_note(note + control.line.encode() + b"\n").signatures[-1]
    verify_cosignature(text, signature, "LT", net.keys["LT"].public)
    assert parse_checkpoint_text(text).size > 0


def test_checkpoint_note_from_the_relay_is_queued_for_witnessing(net: TestNet) -> None:
    """A checkpoint control message hands its note to the edge to witness."""
    log = Log(net)
    log.grow(3)
    out = make_core(net).receive(log.control(3), T0)
    assert out.checkpoints == (log.note(3),)


def test_first_checkpoint_is_cosigned(net: TestNet) -> None:
    """With nothing held, a relay-signed checkpoint is held and cosigned."""
    core, log = make_core(net), Log(net)
    log.grow(5)
    out = settle(core, log, 5)
    assert [type(e) for e in out.events] == [CheckpointWitnessed]
    cosigned(net, out, log.note(5))
    assert core.witness.held == HeldCheckpoint(5, log.root(5), log.note(5))


def test_consistent_sequence_is_cosigned_each_time(net: TestNet) -> None:
    """Each larger checkpoint is checked by a consistency proof and cosigned."""
    core, log = make_core(net), Log(net)
    previous = 0
    for size in (1, 2, 7, 8, 21):
        log.grow(size - len(log.leaves))
        verdict = core.observe_checkpoint(log.note(size), T0)
        if previous:
            assert isinstance(verdict, NeedsProof)
            assert verdict.held.size == previous
        previous = size
        out = settle(core, log, size) if isinstance(verdict, NeedsProof) else verdict
        assert isinstance(out, Output)
        assert [type(e) for e in out.events] == [CheckpointWitnessed]
        cosigned(net, out, log.note(size))


def test_same_checkpoint_again_is_nothing_new(net: TestNet) -> None:
    """The checkpoint we hold, announced again, is neither cosigned again nor an alarm."""
    core, log = make_core(net), Log(net)
    log.grow(4)
    settle(core, log, 4)
    assert core.observe_checkpoint(log.note(4), T0) == Output()


def test_forked_checkpoint_is_an_alarm_and_not_cosigned(net: TestNet) -> None:
    """Another root signed for the size we hold is inconsistent: alarm, no cosign."""
    core, log = make_core(net), Log(net)
    log.grow(6)
    settle(core, log, 6)
    out = core.observe_checkpoint(log.note(6, root=b"\x42" * 32), T0)
    assert isinstance(out, Output)
    assert out.send == ()
    event = out.events[0]
    assert isinstance(event, CheckpointInconsistent)
    assert event.alarm
    assert (event.size, event.held_size) == (6, 6)
    assert core.witness.held is not None
    assert core.witness.held.root == log.root(6)


def test_an_older_checkpoint_proven_consistent_changes_nothing(net: TestNet) -> None:
    """A smaller tree (a lagging replica's) proven to lead to ours: no alarm, ours is kept."""
    core, log = make_core(net), Log(net)
    log.grow(9)
    settle(core, log, 9)
    need = core.observe_checkpoint(log.note(4), T0)
    assert isinstance(need, NeedsProof)
    assert need.sizes == (4, 9)
    out = core.complete_checkpoint(need, log.proof(4, 9), T0)
    assert out == Output()
    assert core.witness.held is not None
    assert core.witness.held.size == 9


def test_an_older_checkpoint_off_our_history_is_an_alarm(net: TestNet) -> None:
    """A smaller tree whose root the proof does not lead to ours is inconsistent: alarm."""
    core, log = make_core(net), Log(net)
    log.grow(9)
    settle(core, log, 9)
    forked = Log(net, [b"\x01" * 32, *log.leaves[1:4]])
    need = core.observe_checkpoint(forked.note(4), T0)
    assert isinstance(need, NeedsProof)
    out = core.complete_checkpoint(need, log.proof(4, 9), T0)
    assert isinstance(out, Output)
    assert out.send == ()
    assert [type(e) for e in out.events] == [CheckpointInconsistent]


def test_larger_checkpoint_with_a_rewritten_history_is_an_alarm(net: TestNet) -> None:
    """A larger tree whose proof does not reach our root is inconsistent."""
    core, log = make_core(net), Log(net)
    log.grow(5)
    settle(core, log, 5)
    forked = Log(net, [b"\x01" * 32, *log.leaves[1:]])
    forked.grow(5)
    need = core.observe_checkpoint(forked.note(10), T0)
    assert isinstance(need, NeedsProof)
    out = core.complete_checkpoint(need, forked.proof(5, 10), T0)
    assert isinstance(out, Output)
    assert out.send == ()
    assert [type(e) for e in out.events] == [CheckpointInconsistent]


def test_proof_for_other_sizes_is_an_alarm(net: TestNet) -> None:
    """A proof that names sizes other than ours and the note's is not accepted."""
    core, log = make_core(net), Log(net)
    log.grow(8)
    settle(core, log, 4)
    need = core.observe_checkpoint(log.note(8), T0)
    assert isinstance(need, NeedsProof)
    out = core.complete_checkpoint(need, log.proof(2, 8), T0)
    assert isinstance(out, Output)
    assert [type(e) for e in out.events] == [CheckpointInconsistent]


def test_checkpoint_not_signed_by_the_relay_is_refused(net: TestNet) -> None:
    """A note signed by an endpoint's key instead of the relay's is refused: alarm, no cosign."""
    core, log = make_core(net), Log(net)
    log.grow(3)
    out = core.observe_checkpoint(log.note(3, signer="BY"), T0)
    assert isinstance(out, Output)
    assert out.send == ()
    assert [type(e) for e in out.events] == [CheckpointRefused]
    assert core.witness.held is None


def test_held_checkpoint_comes_back_from_the_snapshot(net: TestNet) -> None:
    """After a restart, the held checkpoint is the one witnessing goes on from."""
    log = Log(net)
    log.grow(6)
    held = HeldCheckpoint(6, log.root(6), log.note(6))
    core = make_core(net, state=CoreState(checkpoint=held))
    out = core.observe_checkpoint(log.note(6, root=b"\x09" * 32), T0)
    assert isinstance(out, Output)
    assert [type(e) for e in out.events] == [CheckpointInconsistent]


def test_after_the_empty_tree_any_larger_tree_is_cosigned_without_a_proof(net: TestNet) -> None:
    """The empty tree is a prefix of every tree, so no proof is asked for after it."""
    core, log = make_core(net), Log(net)
    settle(core, log, 0)
    log.grow(3)
    out = core.observe_checkpoint(log.note(3), T0)
    assert isinstance(out, Output)
    assert [type(e) for e in out.events] == [CheckpointWitnessed]
