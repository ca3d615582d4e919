"""The endpoint's watch over the relay: each way a relay can cheat ends in its named alarm."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hotline.auditlog.leaf import encode_envelope_entry
from hotline.auditlog.merkle import ListHasher, consistency_proof, leaf_hash, root_of
from hotline.endpoint.alarms import PROOF_BOUND_MS, AlarmKind, RelaySuspected
from hotline.endpoint.core import EndpointCore, Output
from hotline.endpoint.witness import ConsistencyProof, NeedsProof
from hotline.protocol.bodies import SeenCheckpoint
from hotline.protocol.envelope import open_envelope
from hotline.protocol.vocab import Precedence, Stage
from tests.endpoint.builders import T0, Author, Log, deliver, hash_of, make_core
from tests.factories import TestNet, make_network


@pytest.fixture
def net() -> TestNet:
    return make_network()


@pytest.fixture
def author(net: TestNet) -> Author:
    return Author(net)


def alarms(out: Output) -> list[tuple[AlarmKind, bytes]]:
    return [(e.kind, e.ref) for e in out.events if isinstance(e, RelaySuspected)]


def kinds(out: Output) -> list[AlarmKind]:
    return [kind for kind, _ in alarms(out)]


def connected(core: EndpointCore, at: int = T0 - 60_000) -> EndpointCore:
    core.connection(up=True, now_ms=at)
    return core


def entry(frame: bytes, relay_ts: int = T0) -> bytes:
    return encode_envelope_entry(relay_ts, frame)


def sent(core: EndpointCore, author: Author, precedence: Precedence = Precedence.FLASH) -> bytes:
    draft = author.warning(sender="LT", to=("BY",), precedence=precedence)
    return core.send_message(draft, T0).send[0]


# ---------------------------------------------------------------------- accepted


def test_a_message_never_accepted_raises_not_accepted_at_its_precedence_bound(
    net: TestNet, author: Author
) -> None:
    """A FLASH message with no accepted and no refusal is an alarm 10 s after it was queued."""
    core = make_core(net)
    frame = sent(core, author)
    ident = open_envelope(frame, net.network).body.id
    assert kinds(core.tick(T0 + 9_999)) == []
    assert alarms(core.tick(T0 + 10_000)) == [(AlarmKind.NOT_ACCEPTED, ident)]
    assert kinds(core.tick(T0 + 20_000)) == []  # raised once


def test_a_routine_message_has_a_longer_accept_bound(net: TestNet, author: Author) -> None:
    """ROUTINE waits two minutes for accepted before the alarm."""
    core = make_core(net)
    sent(core, author, Precedence.ROUTINE)
    assert kinds(core.tick(T0 + 119_999)) == []
    assert kinds(core.tick(T0 + 120_000)) == [AlarmKind.NOT_ACCEPTED]


def test_an_accepted_message_raises_nothing_once_the_log_holds_it(
    net: TestNet, author: Author
) -> None:
    """accepted in time, and the entry at its index is the message: no alarm, ever."""
    core = make_core(net)
    frame = sent(core, author)
    core.receive(author.accepted(frame, 0), T0 + 50)
    assert kinds(core.log_entries(0, (entry(frame),), T0 + 500)) == []
    assert kinds(core.tick(T0 + 10 * PROOF_BOUND_MS)) == []


def test_an_accepted_index_holding_another_entry_is_not_in_log(
    net: TestNet, author: Author
) -> None:
    """The relay named index 0, but index 0 holds another message: not_in_log."""
    core = make_core(net)
    frame = sent(core, author)
    other = net.seal(author.text(sender="BY", to=("LT",)))
    core.receive(author.accepted(frame, 0), T0 + 50)
    out = core.log_entries(0, (entry(other),), T0 + 500)
    assert alarms(out) == [(AlarmKind.NOT_IN_LOG, open_envelope(frame, net.network).body.id)]


def test_an_accepted_index_no_checked_checkpoint_reaches_is_inclusion_unproven(
    net: TestNet, author: Author
) -> None:
    """An index beyond every tree we could check stays unproven: an alarm after the bound."""
    core = make_core(net)
    frame = sent(core, author)
    core.receive(author.accepted(frame, 100_000), T0 + 50)
    assert kinds(core.tick(T0 + 50 + PROOF_BOUND_MS - 1)) == []
    assert kinds(core.tick(T0 + 50 + PROOF_BOUND_MS)) == [AlarmKind.INCLUSION_UNPROVEN]


# ---------------------------------------------------------------------- deliveries


def test_a_delivery_later_than_its_deadline_while_connected_is_delivery_late(
    net: TestNet, author: Author
) -> None:
    """Logged at T0, delivered 8 s later while we were connected: a FLASH is due in 5 s."""
    core = connected(make_core(net))
    frame = net.seal(author.warning(sender="BY", to=("LT",)))
    core.receive(deliver(frame, 0), T0 + 8_000)
    out = core.log_entries(0, (entry(frame, T0),), T0 + 8_100)
    assert kinds(out) == [AlarmKind.DELIVERY_LATE]


def test_a_backlog_delivered_on_reconnect_is_not_late(net: TestNet, author: Author) -> None:
    """A message logged while we were away may arrive late: that is store and forward."""
    core = connected(make_core(net), at=T0 + 7_900)
    frame = net.seal(author.warning(sender="BY", to=("LT",)))
    core.receive(deliver(frame, 0), T0 + 8_000)
    assert kinds(core.log_entries(0, (entry(frame, T0),), T0 + 8_100)) == []


def test_an_earlier_message_after_a_later_one_of_the_same_urgency_is_reordered(
    net: TestNet, author: Author
) -> None:
    """BY's seq 1 arriving after its seq 2 (both FLASH) is delivery_reordered."""
    core = connected(make_core(net))
    first = net.seal(author.warning(sender="BY", to=("LT",)))
    second = net.seal(author.warning(sender="BY", to=("LT",)))
    assert kinds(core.receive(deliver(second, 1), T0)) == []
    assert kinds(core.receive(deliver(first, 0), T0 + 10)) == [AlarmKind.DELIVERY_REORDERED]


def test_a_less_urgent_earlier_message_may_come_after_a_more_urgent_one(
    net: TestNet, author: Author
) -> None:
    """The relay delivers FLASH before ROUTINE: an older routine message after it is fine."""
    core = connected(make_core(net))
    routine = net.seal(author.warning(sender="BY", to=("LT",), precedence=Precedence.ROUTINE))
    flash = net.seal(author.warning(sender="BY", to=("LT",)))
    assert kinds(core.receive(deliver(flash, 1), T0)) == []
    assert kinds(core.receive(deliver(routine, 0), T0 + 10)) == []


def test_the_same_message_from_a_second_log_index_is_stale(
    net: TestNet, author: Author
) -> None:
    """A message delivered again from another index was logged twice: delivery_stale."""
    core = connected(make_core(net))
    frame = net.seal(author.warning(sender="BY", to=("LT",)))
    core.receive(deliver(frame, 3), T0)
    assert kinds(core.receive(deliver(frame, 3), T0 + 10)) == []  # a resend: fine
    assert kinds(core.receive(deliver(frame, 9), T0 + 20)) == [AlarmKind.DELIVERY_STALE]


def test_an_expired_message_delivered_while_we_were_connected_is_stale(
    net: TestNet, author: Author
) -> None:
    """A warning delivered past its expires, though we were there all along, is stale."""
    core = connected(make_core(net))
    warning = author.warning(sender="BY", to=("LT",))
    frame = net.seal(replace(warning, expires=T0 + 1_000))
    assert kinds(core.receive(deliver(frame, 0), T0 + 2_000)) == [AlarmKind.DELIVERY_STALE]


def test_a_message_to_us_in_the_log_but_never_delivered_is_withheld(
    net: TestNet, author: Author
) -> None:
    """The log holds BY's warning to LT; LT, connected, never gets it: withheld."""
    core = connected(make_core(net))
    frame = net.seal(author.warning(sender="BY", to=("LT",)))
    assert kinds(core.log_entries(0, (entry(frame),), T0)) == []
    assert kinds(core.tick(T0 + PROOF_BOUND_MS - 1)) == []
    assert kinds(core.tick(T0 + PROOF_BOUND_MS)) == [AlarmKind.WITHHELD]


def test_a_message_to_someone_else_in_the_log_is_not_owed_to_us(
    net: TestNet, author: Author
) -> None:
    """Only messages addressed to us can be withheld from us."""
    core = connected(make_core(net))
    frame = net.seal(author.warning(sender="BY", to=("LV",)))
    core.log_entries(0, (entry(frame),), T0)
    assert kinds(core.tick(T0 + 2 * PROOF_BOUND_MS)) == []


# ---------------------------------------------------------------------- the log itself


def test_a_logged_receipt_from_a_non_recipient_breaks_a_log_rule(
    net: TestNet, author: Author
) -> None:
    """EE's receipt for BY's message to LT alone is a finding against the relay."""
    core = connected(make_core(net))
    message = net.seal(author.warning(sender="BY", to=("LT",)))
    receipt = author.receipt("EE", message, Stage.DELIVERED)
    out = core.log_entries(0, (entry(message), entry(receipt)), T0)
    found = [e for e in out.events if isinstance(e, RelaySuspected)]
    assert [(e.kind, e.index) for e in found] == [(AlarmKind.LOG_RULE_BROKEN, 1)]
    assert ("rule", "receipt_not_from_recipient") in found[0].evidence


def test_entries_that_do_not_hash_to_the_signed_root_are_a_mismatch(net: TestNet) -> None:
    """The edge found the served entries hash to another root: entries_mismatch."""
    core = make_core(net)
    log = Log(net)
    log.grow(4)
    witnessed(core, log, 4)
    assert kinds(core.entries_mismatch(b"\x01" * 32, T0)) == [AlarmKind.ENTRIES_MISMATCH]


# ---------------------------------------------------------------------- checkpoints


def witnessed(core: EndpointCore, log: Log, size: int) -> None:
    verdict = core.observe_checkpoint(log.note(size), T0)
    assert isinstance(verdict, Output)


def holding_four(net: TestNet) -> tuple[EndpointCore, Log]:
    """LT, connected, holding a witnessed checkpoint of a 4-entry log."""
    core = connected(make_core(net))
    log = Log(net)
    log.grow(4)
    witnessed(core, log, 4)
    return core, log


def from_by(net: TestNet, author: Author, seen: SeenCheckpoint) -> bytes:
    """BY's warning to LT, delivered from index 4, saying BY saw ``seen``."""
    body = replace(author.warning(sender="BY", to=("LT",)), cp=seen)
    return deliver(net.seal(body), 4)


def proof_of(log: Log, old: int, new: int) -> ConsistencyProof:
    proof = consistency_proof(old, new, ListHasher(log.leaves[:new]))
    return ConsistencyProof(old, new, log.root(old), log.root(new), tuple(proof))


def test_every_body_we_sign_carries_the_checkpoint_we_witnessed(
    net: TestNet, author: Author
) -> None:
    """cp in a signed body is the latest checkpoint witnessed: size and root."""
    core = make_core(net)
    log = Log(net)
    log.grow(5)
    witnessed(core, log, 5)
    frame = sent(core, author)
    assert open_envelope(frame, net.network).body.cp == SeenCheckpoint(size=5, root=log.root(5))


def test_a_newer_checkpoint_never_proven_consistent_is_an_alarm(net: TestNet) -> None:
    """The relay announces size 8 and never proves it from our 4: consistency_unproven."""
    core = make_core(net)
    log = Log(net)
    log.grow(8)
    witnessed(core, log, 4)
    assert isinstance(core.observe_checkpoint(log.note(8), T0 + 100), NeedsProof)
    assert kinds(core.tick(T0 + 100 + PROOF_BOUND_MS)) == [AlarmKind.CONSISTENCY_UNPROVEN]


def test_a_peer_checkpoint_of_our_size_with_another_root_is_a_split_view(
    net: TestNet, author: Author
) -> None:
    """BY signed that it saw size 4 with another root than ours: split_view, at once."""
    core, _ = holding_four(net)
    other_root = SeenCheckpoint(size=4, root=b"\x07" * 32)
    assert kinds(core.receive(from_by(net, author, other_root), T0)) == [AlarmKind.SPLIT_VIEW]


def test_a_peer_checkpoint_the_relay_cannot_prove_consistent_is_a_split_view(
    net: TestNet, author: Author
) -> None:
    """BY saw a size-2 tree from another history: the proof to our size 4 fails."""
    core, log = holding_four(net)
    other = [leaf_hash(b"forked") for _ in range(2)]
    core.receive(from_by(net, author, SeenCheckpoint(size=2, root=root_of(other))), T0)
    (need,) = core.peer_proofs_needed()
    assert (need.old, need.new) == (2, 4)
    answer = proof_of(log, 2, 4)
    assert kinds(core.peer_proof(need, answer, T0 + 100)) == [AlarmKind.SPLIT_VIEW]


def test_a_peer_checkpoint_proven_consistent_raises_nothing(
    net: TestNet, author: Author
) -> None:
    """BY saw our history at size 2: the proof to our size 4 holds; nothing to say."""
    core, log = holding_four(net)
    core.receive(from_by(net, author, SeenCheckpoint(size=2, root=log.root(2))), T0)
    (need,) = core.peer_proofs_needed()
    answer = proof_of(log, 2, 4)
    assert kinds(core.peer_proof(need, answer, T0 + 100)) == []
    assert core.peer_proofs_needed() == []
    later = kinds(core.tick(T0 + 2 * PROOF_BOUND_MS))
    assert AlarmKind.CONSISTENCY_UNPROVEN not in later
    assert AlarmKind.SPLIT_VIEW not in later


def test_a_peer_checkpoint_left_unproven_is_an_alarm_after_the_bound(
    net: TestNet, author: Author
) -> None:
    """A peer's checkpoint the relay never proves against ours: consistency_unproven."""
    core, log = holding_four(net)
    core.receive(from_by(net, author, SeenCheckpoint(size=2, root=log.root(2))), T0)
    unproven = [e for e in core.tick(T0 + PROOF_BOUND_MS).events
                 if isinstance(e, RelaySuspected) and e.kind is AlarmKind.CONSISTENCY_UNPROVEN]
    assert [e.party for e in unproven] == ["BY"]


def test_hash_of_helper_matches_the_body_hash(net: TestNet, author: Author) -> None:
    """The receipt hash a peer checks is the SHA-256 of the body bytes (sanity of builders)."""
    frame = net.seal(author.text())
    assert hash_of(frame, net) == open_envelope(frame, net.network).hash


def test_a_message_replayed_from_many_indexes_raises_one_alarm(
    net: TestNet, author: Author
) -> None:
    """However often the relay logs and delivers it again, delivery_stale is raised once."""
    core = connected(make_core(net))
    frame = net.seal(author.warning(sender="BY", to=("LT",)))
    core.receive(deliver(frame, 3), T0)
    raised = [k for i in range(10, 60) for k in kinds(core.receive(deliver(frame, i), T0 + i))]
    assert raised == [AlarmKind.DELIVERY_STALE]
