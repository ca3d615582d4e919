"""The endpoint's sans-IO core: what it answers, reports and refuses."""

from __future__ import annotations

import hashlib

import pytest

from hotline.endpoint.core import EndpointCore, Output
from hotline.endpoint.errors import AlreadyAcknowledged, UnknownMessage
from hotline.endpoint.events import (
    DeliveryRefused,
    DuplicateIgnored,
    LinkTestAnswered,
    MessageAccepted,
    MessageAcknowledged,
    MessageQueued,
    MessageReceived,
    MessageRejected,
    ReceiptQueued,
    ReceiptStored,
)
from hotline.errors import Rejected
from hotline.protocol.bodies import ReceiptBody
from hotline.protocol.envelope import open_envelope
from hotline.protocol.schema import encode_body
from hotline.protocol.session import (
    Auth,
    Challenge,
    Welcome,
    decode_control,
    encode_control,
    verify_auth,
)
from hotline.protocol.vocab import AckAction, Stage
from tests.endpoint.builders import T0, Author, deliver, make_core
from tests.factories import TestNet, make_network


@pytest.fixture
def net() -> TestNet:
    return make_network()


@pytest.fixture
def author(net: TestNet) -> Author:
    return Author(net)


def receipt_of(net: TestNet, out: Output) -> ReceiptBody:
    assert len(out.send) == 1
    body = open_envelope(out.send[0], net.network).body
    assert isinstance(body, ReceiptBody)
    return body


def kinds(out: Output) -> list[type]:
    return [type(e) for e in out.events]


def test_challenge_is_answered_with_a_signed_auth_and_the_receipts_cursor(net: TestNet) -> None:
    """A challenge gets an auth signed over the challenge bytes as received, with since."""
    core = make_core(net)
    challenge = encode_control(Challenge(b"\x07" * 32, "relay", T0))
    out = core.receive(challenge, T0)
    auth = decode_control(out.send[0])
    assert isinstance(auth, Auth)
    assert (auth.id, auth.since) == ("LT", -1)
    verify_auth(challenge, auth, net.keys["LT"].public)


def test_welcome_is_reported_with_the_log_size(net: TestNet) -> None:
    """A welcome tells the edge the session is open, and sends nothing by itself."""
    out = make_core(net).receive(encode_control(Welcome("LT", 42)), T0)
    assert out.welcomed == 42
    assert out.send == ()


def test_new_message_is_received_and_answered_with_a_delivered_receipt(
    net: TestNet, author: Author
) -> None:
    """A new message becomes MessageReceived plus a signed delivered receipt of its body hash."""
    core = make_core(net)
    frame = net.seal(author.warning())
    out = core.receive(deliver(frame, 7), T0 + 100)
    assert kinds(out) == [MessageReceived, ReceiptQueued]
    received = out.events[0]
    assert isinstance(received, MessageReceived)
    assert (received.frame, received.index, received.received_ms) == (frame, 7, T0 + 100)
    receipt = receipt_of(net, out)
    sent = open_envelope(frame, net.network)
    assert receipt.sender == "LT"
    assert receipt.ref == sent.body.id
    assert receipt.stage is Stage.DELIVERED
    assert receipt.hash == hashlib.sha256(sent.body_bytes).digest()


def test_duplicate_is_answered_again_but_not_received_twice(
    net: TestNet, author: Author
) -> None:
    """A message delivered twice is answered twice (same receipt) and received once."""
    core = make_core(net)
    frame = net.seal(author.warning())
    first = core.receive(deliver(frame, 7), T0)
    again = core.receive(deliver(frame, 7), T0 + 3000)
    assert kinds(again) == [DuplicateIgnored]
    assert again.send == first.send


def test_duplicate_after_a_rejected_receipt_gets_a_new_receipt(
    net: TestNet, author: Author
) -> None:
    """When the relay refused our receipt, a redelivered message is answered by a new one."""
    core = make_core(net)
    frame = net.seal(author.warning())
    delivered = core.receive(deliver(frame), T0)
    first = receipt_of(net, delivered)
    core.receive(author.refused(delivered.send[0], "replay", "seen before"), T0)
    again = core.receive(deliver(frame), T0 + 40_000)
    assert kinds(again) == [DuplicateIgnored, ReceiptQueued]
    second = receipt_of(net, again)
    assert second.ref == first.ref
    assert second.id != first.id
    assert second.seq > first.seq


def test_message_signed_with_a_wrong_key_is_refused(net: TestNet, author: Author) -> None:
    """BY's message signed with PL's key is refused as bad_signature, unanswered."""
    core = make_core(net)
    frame = net.seal(author.warning(), signer="PL")
    out = core.receive(deliver(frame, 3), T0)
    assert out.send == ()
    assert kinds(out) == [DeliveryRefused]
    refused = out.events[0]
    assert isinstance(refused, DeliveryRefused)
    assert (refused.code, refused.sender, refused.index) == ("bad_signature", "BY", 3)


def test_a_refused_frame_is_reported_once(net: TestNet, author: Author) -> None:
    """The relay resending a refused frame raises no second alarm."""
    core = make_core(net)
    frame = net.seal(author.warning(), signer="PL")
    core.receive(deliver(frame), T0)
    assert core.receive(deliver(frame), T0 + 3000) == Output()


def test_message_from_the_relay_is_refused(net: TestNet, author: Author) -> None:
    """A warning signed by the relay is refused: only endpoints send warnings."""
    core = make_core(net)
    out = core.receive(deliver(net.seal(author.warning(sender="relay"))), T0)
    assert out.send == ()
    refused = out.events[0]
    assert isinstance(refused, DeliveryRefused)
    assert (refused.code, refused.path) == ("schema", "t")


def test_message_not_addressed_to_us_is_refused(net: TestNet, author: Author) -> None:
    """A warning to LV delivered to LT is refused as link_forbidden."""
    core = make_core(net)
    out = core.receive(deliver(net.seal(author.warning(to=("LV",)))), T0)
    assert out.send == ()
    refused = out.events[0]
    assert isinstance(refused, DeliveryRefused)
    assert refused.code == "link_forbidden"


def test_message_from_an_unlinked_sender_is_refused(author: Author) -> None:
    """``*`` from an endpoint not linked to us does not reach us."""
    net = make_network(links=[("BY", "PL"), ("LT", "PL")])
    author = Author(net)
    out = make_core(net).receive(deliver(net.seal(author.warning(to="*"))), T0)
    assert kinds(out) == [DeliveryRefused]


def test_star_reaches_every_linked_endpoint(net: TestNet, author: Author) -> None:
    """A warning to ``*`` from a linked endpoint is received."""
    out = make_core(net).receive(deliver(net.seal(author.warning(to="*"))), T0)
    assert kinds(out) == [MessageReceived, ReceiptQueued]


def test_link_test_is_answered_at_once(net: TestNet, author: Author) -> None:
    """A relay link test gets a delivered receipt with its body hash immediately."""
    core = make_core(net)
    frame = net.seal(author.link_test())
    out = core.receive(deliver(frame, 9), T0)
    assert kinds(out) == [LinkTestAnswered, ReceiptQueued]
    receipt = receipt_of(net, out)
    test = open_envelope(frame, net.network)
    assert (receipt.ref, receipt.hash, receipt.stage) == (test.body.id, test.hash, Stage.DELIVERED)
    queued = out.events[1]
    assert isinstance(queued, ReceiptQueued)
    assert queued.link_test


def test_link_test_from_an_endpoint_is_refused(net: TestNet, author: Author) -> None:
    """Only the relay sends link tests."""
    out = make_core(net).receive(deliver(net.seal(author.link_test(sender="BY"))), T0)
    assert out.send == ()
    assert kinds(out) == [DeliveryRefused]


def test_link_test_for_another_endpoint_is_refused(net: TestNet, author: Author) -> None:
    """A link test addressed to LV is not answered by LT."""
    out = make_core(net).receive(deliver(net.seal(author.link_test(to="LV"))), T0)
    assert out.send == ()
    assert kinds(out) == [DeliveryRefused]


def send(core: EndpointCore, author: Author, to: tuple[str, ...] = ("BY", "LV")) -> bytes:
    out = core.send_message(author.warning(sender="LT", to=to), T0)
    assert kinds(out) == [MessageQueued]
    return out.send[0]


def test_sending_signs_with_our_next_seq(net: TestNet, author: Author) -> None:
    """An operator's message is signed with our key and the next seq, which then rises."""
    core = make_core(net)
    start = core.next_seq
    frame = send(core, author)
    body = open_envelope(frame, net.network).body
    assert (body.sender, body.seq) == ("LT", start)
    assert core.next_seq == start + 1
    assert core.pending_frames() == (frame,)


def test_seq_rises_strictly_over_messages_and_receipts(net: TestNet, author: Author) -> None:
    """Messages and receipts share one strictly increasing seq."""
    core = make_core(net)
    frames = [send(core, author)]
    frames += core.receive(deliver(net.seal(author.warning())), T0).send
    frames += core.receive(deliver(net.seal(author.link_test())), T0).send
    frames.append(send(core, author))
    seqs = [open_envelope(f, net.network).body.seq for f in frames]
    assert seqs == sorted(set(seqs))
    assert core.pending_frames() == tuple(frames)


def test_sending_to_an_unlinked_endpoint_is_refused(author: Author) -> None:
    """A message to an endpoint we have no link with is refused before it is signed."""
    net = make_network(links=[("LT", "BY")])
    core = make_core(net)
    with pytest.raises(Rejected) as caught:
        core.send_message(Author(net).warning(sender="LT", to=("LV",)), T0)
    assert caught.value.code == "link_forbidden"
    assert core.pending_frames() == ()


def test_accepted_marks_the_outbox(net: TestNet, author: Author) -> None:
    """The relay's accepted receipt settles the pending message and starts its deadlines."""
    core = make_core(net)
    frame = send(core, author)
    out = core.receive(author.accepted(frame, 12, ts=T0 + 5), T0 + 20)
    assert kinds(out) == [MessageAccepted]
    accepted = out.events[0]
    assert isinstance(accepted, MessageAccepted)
    assert (accepted.index, accepted.accepted_ts, accepted.received_ms) == (12, T0 + 5, T0 + 20)
    assert core.pending_frames() == ()
    assert core.receive(author.accepted(frame, 12), T0 + 30) == Output()


def test_accepted_signed_by_an_endpoint_is_refused(net: TestNet, author: Author) -> None:
    """An accepted receipt not signed by the relay settles nothing."""
    core = make_core(net)
    frame = send(core, author)
    out = core.receive(author.accepted(frame, 12, signer="BY"), T0)
    assert kinds(out) == [DeliveryRefused]
    assert core.pending_frames() == (frame,)


def test_rejected_notice_marks_the_message_rejected(net: TestNet, author: Author) -> None:
    """A rejection of our message is an alarm and takes it out of the pending set."""
    core = make_core(net)
    frame = send(core, author)
    ref = open_envelope(frame, net.network).body.id
    out = core.receive(author.refused(frame, "replay", "this id was used before"), T0)
    assert kinds(out) == [MessageRejected]
    assert open_envelope(frame, net.network).body.id == ref
    assert out.events[0].alarm
    assert core.pending_frames() == ()


def test_receipts_for_our_message_are_stored_and_advance_since(
    net: TestNet, author: Author
) -> None:
    """A recipient's delivered receipt is stored with its log index, which becomes since."""
    core = make_core(net)
    frame = send(core, author)
    out = core.receive(deliver(author.receipt("BY", frame, Stage.DELIVERED), 30), T0 + 50)
    assert kinds(out) == [ReceiptStored]
    stored = out.events[0]
    assert isinstance(stored, ReceiptStored)
    assert (stored.party, stored.stage, stored.index) == ("BY", Stage.DELIVERED, 30)
    assert core.since == 30


def test_receipt_with_a_wrong_hash_is_refused(net: TestNet, author: Author) -> None:
    """A receipt whose hash is not our body's hash is refused."""
    core = make_core(net)
    frame = send(core, author)
    bad = author.receipt("BY", frame, Stage.DELIVERED, digest=b"\x00" * 32)
    out = core.receive(deliver(bad, 30), T0)
    refused = out.events[0]
    assert isinstance(refused, DeliveryRefused)
    assert (refused.code, refused.path) == ("schema", "hash")
    assert core.since == -1


def test_receipt_from_a_non_recipient_is_refused(net: TestNet, author: Author) -> None:
    """Only a recipient of our message may write a receipt for it."""
    core = make_core(net)
    frame = send(core, author, to=("BY",))
    out = core.receive(deliver(author.receipt("EE", frame, Stage.DELIVERED), 30), T0)
    refused = out.events[0]
    assert isinstance(refused, DeliveryRefused)
    assert refused.code == "link_forbidden"


def test_acknowledging_sends_a_signed_acknowledged_receipt(
    net: TestNet, author: Author
) -> None:
    """Acknowledge sends an acknowledged receipt with action and note, once only."""
    core = make_core(net)
    frame = net.seal(author.warning())
    core.receive(deliver(frame), T0)
    ref = open_envelope(frame, net.network).body.id
    out = core.acknowledge(ref, AckAction.MONITORING, "radar on it", T0 + 10_000)
    assert kinds(out) == [MessageAcknowledged, ReceiptQueued]
    receipt = receipt_of(net, out)
    assert (receipt.stage, receipt.action, receipt.note) == (
        Stage.ACKNOWLEDGED, AckAction.MONITORING, "radar on it")
    assert receipt.hash == open_envelope(frame, net.network).hash
    with pytest.raises(AlreadyAcknowledged):
        core.acknowledge(ref, None, None, T0 + 20_000)


def test_acknowledging_an_unknown_message_is_refused(net: TestNet, author: Author) -> None:
    """Acknowledging an id we never received raises UnknownMessage."""
    with pytest.raises(UnknownMessage):
        make_core(net).acknowledge(author.ids(T0), None, None, T0)


def test_an_envelope_outside_a_control_message_is_refused(net: TestNet, author: Author) -> None:
    """The relay wraps envelopes in deliver; a bare one is a protocol error."""
    with pytest.raises(Rejected):
        make_core(net).receive(net.seal(author.warning()), T0)


def test_receipt_bytes_are_the_bytes_signed(net: TestNet, author: Author) -> None:
    """Our receipt's signed body is exactly its canonical encoding (nothing re-encoded)."""
    core = make_core(net)
    out = core.receive(deliver(net.seal(author.warning())), T0)
    envelope = open_envelope(out.send[0], net.network)
    assert envelope.body_bytes == encode_body(envelope.body)
