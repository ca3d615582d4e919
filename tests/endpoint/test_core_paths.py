"""The core with two relays, sans-IO: once-signed bodies, per-relay outboxes, shown once."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from hotline.endpoint.core import EndpointCore, Output
from hotline.endpoint.events import MessageAccepted, MessageReceived, PathArrived
from hotline.endpoint.journal import JOURNAL_FILE, Journal
from hotline.endpoint.state import CoreState
from hotline.network import RelayInfo
from hotline.protocol.envelope import open_envelope
from hotline.protocol.session import Deliver, encode_control
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
