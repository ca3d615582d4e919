"""The journal on a real SQLite file: durable, ordered, and the core's memory."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hotline.endpoint.core import EndpointCore, Output
from hotline.endpoint.events import DuplicateIgnored, RelayConnected
from hotline.endpoint.journal import JOURNAL_FILE, Journal
from hotline.protocol.envelope import open_envelope
from hotline.protocol.vocab import AckAction, Stage
from tests.endpoint.builders import T0, Author, Ids, deliver
from tests.factories import TestNet, make_network


@pytest.fixture
def net() -> TestNet:
    return make_network()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / JOURNAL_FILE


def core_from(journal: Journal, net: TestNet, ids: Ids) -> EndpointCore:
    return EndpointCore(net.network, "LT", net.keys["LT"], journal.load_state(), ids)


def step(journal: Journal, out: Output) -> Output:
    journal.record(out.events)
    return out


def test_journal_uses_wal_and_full_sync(path: Path) -> None:
    """The journal file is in WAL mode with synchronous=FULL on its connection."""
    journal = Journal.open(path)
    try:
        assert journal.durability() == ("wal", "full")
    finally:
        journal.close()


def test_received_message_survives_reopening(path: Path, net: TestNet) -> None:
    """A received and acknowledged message is still in the inbox after reopening."""
    author, ids = Author(net), Ids()
    journal = Journal.open(path)
    core = core_from(journal, net, ids)
    frame = net.seal(author.warning())
    step(journal, core.receive(deliver(frame, 4), T0))
    ref = open_envelope(frame, net.network).body.id
    step(journal, core.acknowledge(ref, AckAction.NO_ACTION, "seen", T0 + 500))
    journal.close()

    journal = Journal.open(path)
    try:
        (item,) = journal.reads.inbox()
        assert journal.reads.inbox_item(ref) == item
    finally:
        journal.close()
    assert (item.id, item.sender, item.index, item.received_ms) == (ref, "BY", 4, T0)
    assert (item.delivered_ms, item.acknowledged_ms) == (T0, T0 + 500)
    assert (item.action, item.note, item.duplicates) == (AckAction.NO_ACTION, "seen", 0)


def test_duplicate_after_reopening_is_recognised_and_answered_alike(
    path: Path, net: TestNet
) -> None:
    """After a restart a redelivered message is a duplicate, answered with the same receipt."""
    author = Author(net)
    journal = Journal.open(path)
    frame = net.seal(author.warning())
    first = step(journal, core_from(journal, net, Ids()).receive(deliver(frame), T0))
    journal.close()

    journal = Journal.open(path)
    try:
        again = step(journal, core_from(journal, net, Ids()).receive(deliver(frame), T0 + 9))
        (item,) = journal.reads.inbox()
    finally:
        journal.close()
    assert [type(e) for e in again.events] == [DuplicateIgnored]
    assert again.send == first.send
    assert item.duplicates == 1


def test_seq_strictly_increases_across_reopening(path: Path, net: TestNet) -> None:
    """The next seq after reopening is above every seq signed before."""
    author = Author(net)
    journal = Journal.open(path, initial_seq=100)
    core = core_from(journal, net, Ids())
    seqs = []
    for _ in range(3):
        out = step(journal, core.send_message(author.warning(sender="LT", to=("BY",)), T0))
        seqs.append(open_envelope(out.send[0], net.network).body.seq)
    journal.close()

    journal = Journal.open(path, initial_seq=1)
    try:
        core = core_from(journal, net, Ids(500))
        out = step(journal, core.receive(deliver(net.seal(author.warning())), T0))
    finally:
        journal.close()
    seqs.append(open_envelope(out.send[0], net.network).body.seq)
    assert seqs == [100, 101, 102, 103]


def test_unaccepted_envelopes_come_back_in_order(path: Path, net: TestNet) -> None:
    """Only what the relay neither accepted nor rejected comes back, in seq order."""
    author = Author(net)
    journal = Journal.open(path)
    core = core_from(journal, net, Ids())
    frames = [
        step(journal, core.send_message(author.warning(sender="LT", to=("BY",)), T0)).send[0]
        for _ in range(4)
    ]
    frames += step(journal, core.receive(deliver(net.seal(author.link_test())), T0)).send
    step(journal, core.receive(author.accepted(frames[1], 10), T0))
    step(journal, core.receive(author.refused(frames[2], "replay", "seen before"), T0))
    journal.close()

    journal = Journal.open(path)
    try:
        pending = journal.unaccepted()
        restored = core_from(journal, net, Ids())
        (accepted, *_) = [i for i in journal.reads.outbox() if i.accepted_index is not None]
        (refused,) = [i for i in journal.reads.outbox() if i.rejection is not None]
    finally:
        journal.close()
    assert [p.frame for p in pending] == [frames[0], frames[3], frames[4]]
    assert [p.receipt for p in pending] == [False, False, True]
    assert restored.pending_frames() == (frames[0], frames[3], frames[4])
    assert accepted.accepted_index == 10
    assert refused.rejection is not None
    assert refused.rejection.code == "replay"


def test_receipt_stages_and_since_are_kept(path: Path, net: TestNet) -> None:
    """Recipients' receipts are kept per stage with times and index; since follows them."""
    author = Author(net)
    journal = Journal.open(path)
    core = core_from(journal, net, Ids())
    frame = step(journal, core.send_message(author.warning(sender="LT", to=("BY",)), T0)).send[0]
    step(journal, core.receive(author.accepted(frame, 3, ts=T0 + 1), T0 + 2))
    step(journal, core.receive(deliver(author.receipt("BY", frame, Stage.DELIVERED, T0 + 5), 4),
                               T0 + 6))
    step(journal, core.receive(deliver(author.receipt("BY", frame, Stage.ACKNOWLEDGED,
                                                      T0 + 50), 9), T0 + 60))
    journal.close()

    journal = Journal.open(path)
    try:
        (item,) = journal.reads.outbox()
        state = journal.load_state()
    finally:
        journal.close()
    assert (item.accepted_index, item.accepted_ts, item.accepted_received_ms) == (3, T0 + 1, T0 + 2)
    delivered = item.stage("BY", Stage.DELIVERED)
    acknowledged = item.stage("BY", Stage.ACKNOWLEDGED)
    assert delivered is not None
    assert acknowledged is not None
    assert (delivered.their_ts, delivered.received_ms, delivered.index) == (T0 + 5, T0 + 6, 4)
    assert (acknowledged.their_ts, acknowledged.index) == (T0 + 50, 9)
    assert state.since == 9
    (sent,) = state.sent
    assert sent.reached == {("BY", Stage.DELIVERED), ("BY", Stage.ACKNOWLEDGED)}


def test_a_failed_batch_leaves_nothing_behind(path: Path, net: TestNet) -> None:
    """A batch is one transaction: if one event cannot be written, none is."""
    author = Author(net)
    journal = Journal.open(path)
    try:
        core = core_from(journal, net, Ids())
        out = core.send_message(author.warning(sender="LT", to=("BY",)), T0)
        with pytest.raises(sqlite3.IntegrityError):
            journal.record((RelayConnected(T0, 1), *out.events, *out.events))
        assert journal.reads.outbox() == ()
        assert journal.reads.events() == ()
    finally:
        journal.close()


def test_answered_link_tests_leave_only_their_counts(path: Path, net: TestNet) -> None:
    """A link test's answer stays in the outbox until the relay accepts it, then only counts;
    an unaccepted answer still comes back after reopening, to be resent."""
    author = Author(net)
    journal = Journal.open(path)
    core = core_from(journal, net, Ids())
    answers = [
        step(journal, core.receive(deliver(net.seal(author.link_test())), T0 + i)).send[0]
        for i in range(300)
    ]
    for index, frame in enumerate(answers[:-1]):
        step(journal, core.receive(author.accepted(frame, 100 + index), T0 + 500))
    journal.close()

    journal = Journal.open(path)
    try:
        tests = journal.reads.link_tests()
        pending = journal.unaccepted()
    finally:
        journal.close()
    assert tests.answers_waiting == 1
    assert tests.answers_logged == 299
    assert tests.answered == 300
    assert [p.frame for p in pending] == [answers[-1]]
