"""The core with two relays, sans-IO: once-signed bodies, per-relay outboxes, shown once."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from hotline.auditlog.leaf import encode_envelope_entry
from hotline.endpoint.alarms import PROOF_BOUND_MS, AlarmKind, RelaySuspected
from hotline.endpoint.core import EndpointCore, Output
from hotline.endpoint.events import (
    LinkTestAnswered,
    MessageAccepted,
    MessageReceived,
    MessageRejected,
    PathArrived,
    ReceiptNotLogged,
    ReceiptStored,
)
from hotline.endpoint.journal import JOURNAL_FILE, Journal
from hotline.endpoint.state import CoreState, HeldCheckpoint
from hotline.network import RelayInfo
from hotline.protocol.bodies import RelayCheckpoint
from hotline.protocol.envelope import open_envelope
from hotline.protocol.session import Deliver, RejectedNotice, encode_control
from hotline.protocol.vocab import Stage
from tests.endpoint.builders import T0, Author, Ids
from tests.factories import TestNet, make_network, seeded_key

RELAYS = ("relay", "osce")


@pytest.fixture
def net() -> TestNet:
    base = make_network()
    osce_key = seeded_key("osce")
    relays = {
        "relay": replace(base.network.relay, operator="by"),
        "osce": RelayInfo("osce", "hotline.test/osce", "ws://127.0.0.1:2/v1/ws",
                          osce_key.public, operator="osce"),
    }
    return TestNet(replace(base.network, relays=relays), {**base.keys, "osce": osce_key})


def step(journal: Journal, out: Output) -> Output:
    journal.record(out.events)
    return out


def _deliver(frame: bytes, index: int) -> bytes:
    return encode_control(Deliver(index, frame))


def _receipt_refused_by_osce(
    net: TestNet, delivered_by: str
) -> tuple[EndpointCore, bytes, bytes, Output]:
    """LT is delivered BY's warning by ``delivered_by``; osce refuses LT's receipt for it as
    not logged. LT's core, the warning's frame, LT's receipt, and what LT made of the refusal."""
    core = EndpointCore(net.network, "LT", net.keys["LT"], CoreState(), Ids())
    author = Author(net)
    message = net.seal(author.warning(sender="BY", to=("LT",)))
    out = core.receive(_deliver(message, 7), T0, delivered_by)
    receipt = out.send_to[0][1]
    refused = core.receive(author.refused(receipt, "schema", "is not logged", "ref",
                                          signer="osce"), T0 + 1, "osce")
    return core, message, receipt, refused


def test_a_message_is_signed_once_and_sent_over_both_relays(tmp_path: Path, net: TestNet) -> None:
    """One frame, one seq, addressed to each relay; each relay's outbox is settled alone."""
    journal = Journal.open(tmp_path / JOURNAL_FILE)
    core = EndpointCore(net.network, "LT", net.keys["LT"], journal.load_state(), Ids())
    author = Author(net)
    out = step(journal, core.send_message(author.warning(sender="LT", to=("BY",)), T0))
    assert out.send == ()
    assert [relay for relay, _ in out.send_to] == list(RELAYS)
    (frame,) = {f for _, f in out.send_to}
    accepted = step(journal, core.receive(author.accepted(frame, 5), T0, "relay"))
    (event,) = [e for e in accepted.events if isinstance(e, MessageAccepted)]
    assert event.relay == "relay"
    assert core.pending_on("relay") == 0
    assert core.pending_on("osce") == 1
    journal.close()
    journal = Journal.open(tmp_path / JOURNAL_FILE)
    try:
        restored = EndpointCore(net.network, "LT", net.keys["LT"], journal.load_state(), Ids())
    finally:
        journal.close()
    assert restored.pending_frames("osce") == (frame,)
    assert restored.pending_frames("relay") == ()


def test_a_message_over_two_relays_is_shown_once_and_answered_once(net: TestNet) -> None:
    """The second path records its arrival; the one signed receipt names the first relay."""
    core = EndpointCore(net.network, "LT", net.keys["LT"], CoreState(), Ids())
    author = Author(net)
    frame = net.seal(author.warning(sender="BY", to=("LT",)))
    first = core.receive(_deliver(frame, 7), T0, "osce")
    assert any(isinstance(e, MessageReceived) for e in first.events)
    receipts = {f for _, f in first.send_to}
    assert len(receipts) == 1
    assert {relay for relay, _ in first.send_to} == set(RELAYS)
    receipt = open_envelope(receipts.pop(), net.network).body
    assert getattr(receipt, "via", None) == "osce"
    assert getattr(receipt, "stage", None) is Stage.DELIVERED
    second = core.receive(_deliver(frame, 3), T0 + 40, "relay")
    assert not any(isinstance(e, MessageReceived) for e in second.events)
    (arrived,) = [e for e in second.events if isinstance(e, PathArrived)]
    assert (arrived.relay, arrived.first) == ("relay", False)
    assert second.send_to == (("relay", open_envelope(
        next(f for _, f in first.send_to), net.network).frame),)


def test_a_link_test_is_answered_over_its_own_relay_only(net: TestNet) -> None:
    """A relay's link test is answered to that relay alone, again the same if it comes again."""
    core = EndpointCore(net.network, "LT", net.keys["LT"], CoreState(), Ids())
    core.connection(up=True, now_ms=T0, relay="osce")
    author = Author(net)
    test = net.seal(author.link_test(sender="osce"))
    out = core.receive(_deliver(test, 4), T0, "osce")
    assert [relay for relay, _ in out.send_to] == ["osce"]
    (answered,) = [e for e in out.events if isinstance(e, LinkTestAnswered)]
    assert answered.relay == "osce"
    again = core.receive(_deliver(test, 4), T0 + 5, "osce")
    assert again.send_to == out.send_to
    assert core.paths["osce"].answering(T0 + 10)
    assert not core.paths["relay"].answering(T0 + 10)


def test_a_receipt_over_the_second_relay_is_a_path_not_a_second_receipt(net: TestNet) -> None:
    """The sender stores LT's receipt once, from the first relay; the second is its path."""
    core = EndpointCore(net.network, "BY", net.keys["BY"], CoreState(), Ids())
    author = Author(net)
    out = core.send_message(author.warning(sender="BY", to=("LT",)), T0)
    frame = out.send_to[0][1]
    receipt = author.receipt("LT", frame, Stage.DELIVERED)
    first = core.receive(_deliver(receipt, 9), T0 + 10, "relay")
    (stored,) = [e for e in first.events if isinstance(e, ReceiptStored)]
    assert stored.relay == "relay"
    second = core.receive(_deliver(receipt, 6), T0 + 30, "osce")
    assert not any(isinstance(e, ReceiptStored) for e in second.events)
    (arrived,) = [e for e in second.events if isinstance(e, PathArrived)]
    assert (arrived.relay, arrived.first, arrived.stage) == ("osce", False, "delivered")
    assert core.receive(_deliver(receipt, 6), T0 + 40, "osce").events == ()


def test_a_relay_that_refused_our_receipt_early_gets_one_of_its_own(net: TestNet) -> None:
    """osce refused LT's receipt before it had the message; when osce delivers it, LT signs
    a receipt for osce alone (via the first relay), and no alarm calls the refusal unfounded."""
    core, message, receipt, refused = _receipt_refused_by_osce(net, delivered_by="relay")
    (rejected,) = [e for e in refused.events if isinstance(e, MessageRejected)]
    assert isinstance(rejected, ReceiptNotLogged)
    assert rejected.relay == "osce"
    assert not rejected.alarm  # osce may not have the message yet: no alarm
    assert not any(isinstance(e, RelaySuspected) for e in refused.events)
    assert core.pending_on("osce") == 0
    assert core.pending_on("relay") == 1
    late = core.receive(_deliver(message, 3), T0 + 50, "osce")
    (own,) = [f for relay, f in late.send_to if relay == "osce"]
    assert own != receipt
    body = open_envelope(own, net.network).body
    assert getattr(body, "via", None) == "relay"
    assert [relay for relay, _ in late.send_to] == ["osce"]


def test_a_temporary_refusal_is_retried_over_that_relay_alone(net: TestNet) -> None:
    """rate_limited at osce: the frame goes again to osce at retry time, not to the other."""
    core = EndpointCore(net.network, "LT", net.keys["LT"], CoreState(), Ids())
    author = Author(net)
    frame = core.send_message(author.warning(sender="LT", to=("BY",)), T0).send_to[0][1]
    core.receive(author.refused(frame, "rate_limited", "slow down", retry_after_ms=500,
                                signer="osce"), T0, "osce")
    assert core.tick(T0 + 100).send_to == ()
    assert core.tick(T0 + 600).send_to == (("osce", frame),)
    assert core.pending_count == 1  # the first relay's outbox


def test_an_unsigned_refusal_from_one_relay_is_an_alarm_naming_it(net: TestNet) -> None:
    """A refusal osce did not sign leaves the message in osce's outbox and names osce."""
    core = EndpointCore(net.network, "LT", net.keys["LT"], CoreState(), Ids())
    author = Author(net)
    frame = core.send_message(author.warning(sender="LT", to=("BY",)), T0).send_to[0][1]
    body = open_envelope(frame, net.network).body
    notice = encode_control(RejectedNotice(body.id, "replay", "seen", "", b""))
    (alarm,) = core.receive(notice, T0 + 1, "osce").events
    assert isinstance(alarm, RelaySuspected)
    assert alarm.relay == "osce"
    assert core.receive(notice, T0 + 2, "osce").events == ()
    assert core.pending_on("osce") == 1
    assert core.guard is core.paths["relay"].guard


def test_after_a_restart_a_message_both_relays_delivered_is_not_withheld(
    tmp_path: Path, net: TestNet
) -> None:
    """The journal's arrivals tell a restarted core that each relay already delivered M."""
    journal = Journal.open(tmp_path / JOURNAL_FILE)
    core = EndpointCore(net.network, "LT", net.keys["LT"], journal.load_state(), Ids())
    frame = net.seal(Author(net).warning(sender="BY", to=("LT",)))
    step(journal, core.receive(_deliver(frame, 0), T0, "osce"))
    step(journal, core.receive(_deliver(frame, 0), T0 + 40, "relay"))
    journal.close()
    journal = Journal.open(tmp_path / JOURNAL_FILE)
    try:
        restored = EndpointCore(net.network, "LT", net.keys["LT"], journal.load_state(), Ids())
    finally:
        journal.close()
    start = T0 + 60_000
    alarms: list[object] = []
    for relay in RELAYS:
        restored.connection(up=True, now_ms=start - 30_000, relay=relay)
        alarms.extend(restored.log_entries(0, (encode_envelope_entry(T0, frame),), start,
                                           relay=relay).events)
    alarms.extend(restored.tick(start + PROOF_BOUND_MS + 1_000).events)
    assert [a for a in alarms if isinstance(a, RelaySuspected)] == []


def test_a_cps_entry_for_another_relay_is_compared_with_that_relays_view(
    net: TestNet
) -> None:
    """BY's warning over relay by vouches for osce's tree at our size with another root:
    split_view, naming osce."""
    held = HeldCheckpoint(4, bytes(32), b"note")
    core = EndpointCore(net.network, "LT", net.keys["LT"],
                        CoreState(path_checkpoints={"osce": held}), Ids())
    other = RelayCheckpoint(relay="osce", size=4, root=bytes([1]) * 32)
    frame = net.seal(replace(Author(net).warning(sender="BY", to=("LT",)), cps=(other,)))
    out = core.receive(_deliver(frame, 0), T0, "relay")
    (alarm,) = [e for e in out.events if isinstance(e, RelaySuspected)]
    assert (alarm.kind, alarm.relay, alarm.party) == (AlarmKind.SPLIT_VIEW, "osce", "BY")
    again = core.receive(_deliver(frame, 0), T0 + 40, "osce")
    assert [e for e in again.events if isinstance(e, RelaySuspected)] == []  # raised once


def test_a_relay_refusing_our_receipt_for_a_message_it_delivered_is_unfounded(
    net: TestNet
) -> None:
    """osce delivered BY's warning itself, then refuses our receipt as not logged: alarm."""
    *_, refused = _receipt_refused_by_osce(net, delivered_by="osce")
    (alarm,) = [e for e in refused.events if isinstance(e, RelaySuspected)]
    assert (alarm.kind, alarm.relay) == (AlarmKind.REFUSAL_UNFOUNDED, "osce")
    assert "itself delivered" in alarm.sentence


def test_another_size_for_a_relay_that_does_not_answer_waits_for_its_own_delivery(
    net: TestNet
) -> None:
    """osce is down: BY's cps entry of another size for osce, over by, owes osce no proof and
    raises nothing; osce's delivery of the body compares it then."""
    held = HeldCheckpoint(4, bytes(32), b"note")
    core = EndpointCore(net.network, "LT", net.keys["LT"],
                        CoreState(path_checkpoints={"osce": held}), Ids())
    other = RelayCheckpoint(relay="osce", size=6, root=bytes([1]) * 32)
    frame = net.seal(replace(Author(net).warning(sender="BY", to=("LT",)), cps=(other,)))
    core.receive(_deliver(frame, 0), T0, "relay")
    assert core.peer_proofs_needed("osce") == []
    later = core.tick(T0 + PROOF_BOUND_MS + 1)
    assert [e for e in later.events if isinstance(e, RelaySuspected) and e.relay == "osce"] == []
    core.receive(_deliver(frame, 0), T0 + PROOF_BOUND_MS + 2, "osce")
    assert [n.seen.size for n in core.peer_proofs_needed("osce")] == [6]


def test_after_a_restart_the_first_path_is_known_and_a_silent_relay_is_channel_withheld(
    tmp_path: Path, net: TestNet
) -> None:
    """M came over osce alone before the restart; relay logged it, answers its link tests and
    never delivers it: channel_withheld naming osce as the first relay."""
    journal = Journal.open(tmp_path / JOURNAL_FILE)
    core = EndpointCore(net.network, "LT", net.keys["LT"], journal.load_state(), Ids())
    author = Author(net)
    frame = net.seal(author.warning(sender="BY", to=("LT",)))
    step(journal, core.receive(_deliver(frame, 0), T0, "osce"))
    journal.close()
    journal = Journal.open(tmp_path / JOURNAL_FILE)
    try:
        restored = EndpointCore(net.network, "LT", net.keys["LT"], journal.load_state(), Ids())
    finally:
        journal.close()
    start = T0 + 60_000
    restored.connection(up=True, now_ms=start - 30_000, relay="relay")
    restored.log_entries(0, (encode_envelope_entry(T0, frame),), start, relay="relay")
    due = start + PROOF_BOUND_MS
    test = net.seal(author.link_test("LT", ts=due - 100))
    restored.receive(_deliver(test, 1), due - 100, "relay")
    alarms = [e for e in restored.tick(due).events if isinstance(e, RelaySuspected)]
    (alarm,) = [a for a in alarms if a.ref == open_envelope(frame, net.network).body.id]
    assert (alarm.kind, alarm.relay) == (AlarmKind.CHANNEL_WITHHELD, "relay")
    assert dict(alarm.evidence)["first_relay"] == "osce"
