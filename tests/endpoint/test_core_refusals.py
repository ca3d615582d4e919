"""The endpoint core refuses what is not for it, reports each refusal once, and resumes state."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hotline.endpoint.core import Output
from hotline.endpoint.events import (
    DeliveryRefused,
    Overdue,
    ReceiptStored,
)
from hotline.endpoint.state import CoreState, HeldMessage, SentMessage
from hotline.errors import Rejected
from hotline.protocol.bodies import AcceptedBody
from hotline.protocol.session import Cosign, encode_control
from hotline.protocol.vocab import Precedence, Stage
from tests.endpoint.builders import T0, Author, deliver, make_core
from tests.factories import TestNet, make_network

NET = make_network()
FLASH = NET.network.deadlines[Precedence.FLASH]


def _refusal(out: Output) -> DeliveryRefused:
    (event,) = out.events
    assert isinstance(event, DeliveryRefused), event
    return event


def test_a_core_is_built_only_for_an_endpoint_with_its_own_key() -> None:
    """A relay id, or another endpoint's key, is a usage error at construction."""
    with pytest.raises(ValueError, match="not an endpoint"):
        make_core(NET, me="relay")
    with pytest.raises(ValueError, match="not LT's key"):
        make_core(TestNet(NET.network, {**NET.keys, "LT": NET.keys["BY"]}))


def test_a_restored_core_keeps_watching_what_was_open_and_only_that() -> None:
    """After a restart: an unanswered sent message and an unacknowledged one held still fall due."""
    author = Author(NET)
    sent = author.warning(sender="LT", to=("BY", "LV"))
    held_open, held_done = author.warning(sender="BY"), author.warning(sender="EE", to=("LT",))
    state = CoreState(
        sent=(SentMessage(sent.id, b"h" * 32, ("BY", "LV"), Precedence.FLASH, T0, rejected=False,
                          reached=frozenset({("BY", Stage.ACKNOWLEDGED)})),),
        inbox=(HeldMessage(held_open.id, "BY", b"h" * 32, Precedence.FLASH, T0, False),
               HeldMessage(held_done.id, "EE", b"h" * 32, Precedence.FLASH, T0, True)),
    )
    core = make_core(NET, state=state)
    due = core.deadlines.due(T0 + FLASH.acknowledged_ms)
    assert all(isinstance(o, Overdue) for o in due)
    assert sorted((o.ref == sent.id, o.party, o.stage.value) for o in due) == [
        (False, "LT", "acknowledged"),  # our operator has not acknowledged held_open
        (True, "LV", "acknowledged"),
        (True, "LV", "delivered"),
    ]


def test_control_messages_meant_for_the_relay_are_refused() -> None:
    """A cosignature line is the endpoint's to send, not to receive."""
    with pytest.raises(Rejected) as caught:
        make_core(NET).receive(encode_control(Cosign("- LT x")), T0)
    assert (caught.value.code, caught.value.path) == ("schema", "t")


def test_an_accepted_receipt_delivered_as_a_message_is_refused_once() -> None:
    """A relay's accepted receipt inside a deliver is refused, and the same frame reported once."""
    core, author = make_core(NET), Author(NET)
    body = AcceptedBody(id=author.ids(T0), sender="relay", ts=T0, seq=1,
                        kid=NET.keys["relay"].public.kid, ref=author.ids(T0), hash=b"\x02" * 32,
                        index=3)
    wrapped = deliver(NET.seal(body), 3)
    refused = _refusal(core.receive(wrapped, T0))
    assert (refused.code, refused.path, refused.sender) == ("schema", "t", "relay")
    assert core.receive(wrapped, T0 + 1) == Output()


def test_an_unreadable_delivery_is_refused_with_no_claimed_sender() -> None:
    """Bytes that are no envelope are refused naming nobody."""
    refused = _refusal(make_core(NET).receive(deliver(b"\x93\x01\x02\x03", 5), T0))
    assert (refused.code, refused.sender, refused.index) == ("bad_frame", "", 5)


def test_a_link_test_delivered_again_is_answered_with_the_same_receipt() -> None:
    """A resent link test gets the receipt already signed, and no second event."""
    core, author = make_core(NET), Author(NET)
    frame = NET.seal(author.link_test())
    first = core.receive(deliver(frame, 1), T0)
    again = core.receive(deliver(frame, 1), T0 + 10)
    assert again == Output(send=first.send)


def test_a_known_id_with_another_body_is_a_replay() -> None:
    """A message reusing the id of one we hold, with other content, is refused."""
    core, author = make_core(NET), Author(NET)
    body = author.warning(sender="BY")
    core.receive(deliver(NET.seal(body), 1), T0)
    other = replace(body, seq=body.seq + 1, expires=body.expires + 1)
    assert _refusal(core.receive(deliver(NET.seal(other), 2), T0)).code == "replay"


def test_receipts_that_answer_nothing_of_ours_are_refused() -> None:
    """A receipt for a message we never sent is a schema error naming ref."""
    core, author = make_core(NET), Author(NET)
    stranger = NET.seal(author.warning(sender="BY"))
    refused = _refusal(core.receive(deliver(author.receipt("BY", stranger, Stage.DELIVERED)), T0))
    assert (refused.code, refused.path) == ("schema", "ref")


def test_an_accepted_for_a_settled_message_changes_nothing() -> None:
    """The relay's answer to a resend of something already accepted is ignored."""
    core, author = make_core(NET), Author(NET)
    frame = core.send_message(author.warning(sender="LT", to=("BY",)), T0).send[0]
    core.receive(author.accepted(frame, 3), T0)
    assert core.receive(author.accepted(frame, 3), T0 + 1) == Output()
    stored = core.receive(deliver(author.receipt("BY", frame, Stage.DELIVERED), 4), T0 + 2)
    assert isinstance(stored.events[0], ReceiptStored)


def test_a_draft_must_be_ours_new_and_addressed_to_a_linked_endpoint() -> None:
    """Another sender, a reused id, or nobody linked to send to: refused, nothing signed."""
    author = Author(NET)
    core = make_core(NET)
    with pytest.raises(Rejected) as caught:
        core.send_message(author.warning(sender="BY", to=("LT",)), T0)
    assert caught.value.code == "sender_mismatch"
    draft = author.warning(sender="LT", to=("BY",))
    core.send_message(draft, T0)
    with pytest.raises(Rejected) as caught:
        core.send_message(draft, T0)
    assert (caught.value.code, caught.value.path) == ("replay", "id")
    alone = make_network(links=[("BY", "LV")])
    with pytest.raises(Rejected) as caught:
        make_core(alone).send_message(Author(alone).warning(sender="LT", to="*"), T0)
    assert (caught.value.code, caught.value.path) == ("link_forbidden", "to")
