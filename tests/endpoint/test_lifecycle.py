"""The endpoint follows the lifecycle table: each recipient's state, and receipts it refuses."""

from __future__ import annotations

from dataclasses import replace

from hotline.endpoint.core import EndpointCore, Output
from hotline.endpoint.events import (
    DeliveryRefused,
    MessageAccepted,
    MessageQueued,
    ReceiptStored,
)
from hotline.endpoint.records import OutboxItem, StageTime
from hotline.endpoint.views import event_json, outbox_json
from hotline.protocol.bodies import ReceiptBody
from hotline.protocol.envelope import open_envelope
from hotline.protocol.lifecycle import RecipientState
from hotline.protocol.vocab import BodyType, Precedence, Stage, Status
from tests.endpoint.builders import T0, Author, deliver, make_core
from tests.factories import make_network

NET = make_network()


def _sent(core: EndpointCore, author: Author) -> bytes:
    out = core.send_message(author.warning(sender="LT", to=("BY",)), T0)
    assert [type(e) for e in out.events] == [MessageQueued]
    return out.send[0]


def _receipt(author: Author, frame: bytes, stage: Stage, index: int) -> bytes:
    if stage is not Stage.REJECTED:
        return deliver(author.receipt("BY", frame, stage), index)
    template = open_envelope(author.receipt("BY", frame, Stage.DELIVERED), NET.network).body
    assert isinstance(template, ReceiptBody)
    rejected = replace(template, stage=stage, reason="unknown incident")  # it must say why
    return deliver(NET.seal(rejected), index)


def _stored(out: Output) -> ReceiptStored:
    (event,) = out.events
    assert isinstance(event, ReceiptStored), event
    return event


def test_receipts_carry_the_recipients_state_after_them() -> None:
    """Accepted, then delivered, then acknowledged: each event names the state it leads to."""
    core, author = make_core(NET), Author(NET)
    frame = _sent(core, author)
    (accepted,) = core.receive(author.accepted(frame, 3), T0 + 10).events
    assert isinstance(accepted, MessageAccepted)
    assert accepted.states == (("BY", RecipientState.ACCEPTED),)
    delivered = _stored(core.receive(_receipt(author, frame, Stage.DELIVERED, 4), T0 + 20))
    assert delivered.state is RecipientState.DELIVERED
    acked = _stored(core.receive(_receipt(author, frame, Stage.ACKNOWLEDGED, 5), T0 + 30))
    assert acked.state is RecipientState.ACKNOWLEDGED
    assert event_json(acked)["state"] == "acknowledged"
    assert event_json(accepted)["states"] == {"BY": "accepted"}


def test_an_acknowledgement_first_settles_the_delivered_deadline() -> None:
    """An acknowledged receipt with no delivered one before it leaves no deadline to miss."""
    core, author = make_core(NET), Author(NET)
    frame = _sent(core, author)
    core.receive(author.accepted(frame, 3), T0)
    acked = _stored(core.receive(_receipt(author, frame, Stage.ACKNOWLEDGED, 4), T0 + 1_000))
    assert acked.state is RecipientState.ACKNOWLEDGED
    assert core.deadlines.due(T0 + 10 * 3_600_000) == []


def test_a_rejection_after_an_acknowledgement_is_refused_with_an_alarm() -> None:
    """A receipt contradicting a final one is refused (an alarm) and changes nothing."""
    core, author = make_core(NET), Author(NET)
    frame = _sent(core, author)
    core.receive(author.accepted(frame, 3), T0)
    core.receive(_receipt(author, frame, Stage.ACKNOWLEDGED, 4), T0 + 10)
    out = core.receive(_receipt(author, frame, Stage.REJECTED, 5), T0 + 20)
    (refused,) = out.events
    assert isinstance(refused, DeliveryRefused)
    assert refused.alarm
    assert (refused.code, refused.path) == ("schema", "stage")
    assert "acknowledged" in refused.sentence
    assert core.since == 4


def test_a_delivered_receipt_after_the_acknowledgement_is_kept_and_changes_nothing() -> None:
    """Receipts reordered in transit are stored; the recipient stays acknowledged."""
    core, author = make_core(NET), Author(NET)
    frame = _sent(core, author)
    core.receive(author.accepted(frame, 3), T0)
    core.receive(_receipt(author, frame, Stage.ACKNOWLEDGED, 4), T0 + 10)
    late = _stored(core.receive(_receipt(author, frame, Stage.DELIVERED, 5), T0 + 20))
    assert late.state is RecipientState.ACKNOWLEDGED


def _item(accepted: bool, *stages: tuple[str, Stage]) -> OutboxItem:
    return OutboxItem(
        id=b"\x01" * 16, seq=1, type=BodyType.WARNING, recipients=("BY", "LV"),
        precedence=Precedence.FLASH, status=Status.EXERCISE, incident=None, created_ms=T0,
        body_json="{}", accepted_index=3 if accepted else None,
        accepted_ts=T0 if accepted else None, accepted_received_ms=T0 if accepted else None,
        rejection=None,
        stages=tuple(
            StageTime(party, stage, T0 + n, T0 + n, 4 + n) for n, (party, stage) in
            enumerate(stages)
        ),
    )


def _states(item: OutboxItem) -> dict[str, object]:
    recipients = outbox_json(item)["recipients"]
    assert isinstance(recipients, dict)
    return {party: row["state"] for party, row in recipients.items()}


def test_the_api_gives_each_recipient_its_state() -> None:
    """The outbox JSON names each recipient's state, acknowledged implying delivered."""
    assert _states(_item(False)) == {"BY": "queued", "LV": "queued"}
    item = _item(True, ("BY", Stage.ACKNOWLEDGED), ("LV", Stage.DELIVERED))
    assert _states(item) == {"BY": "acknowledged", "LV": "delivered"}


def test_the_api_state_follows_the_receipts_in_the_order_they_arrived() -> None:
    """Of two contradicting receipts (kept by an older journal) the first one decides."""
    item = _item(True, ("BY", Stage.REJECTED), ("BY", Stage.ACKNOWLEDGED),
                 ("LV", Stage.ACKNOWLEDGED), ("LV", Stage.REJECTED))
    assert _states(item) == {"BY": "rejected", "LV": "acknowledged"}
