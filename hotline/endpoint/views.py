"""The JSON the local API and the console's event stream speak.

Ids are canonical UUID text, hashes and roots standard base64 (as the relay
writes them), times integer milliseconds since the Unix epoch, UTC; bodies are
their JSON view exactly as journaled.
"""

from __future__ import annotations

import base64
import json

from hotline.endpoint.events import (
    CheckpointInconsistent,
    CheckpointRefused,
    CheckpointWitnessed,
    DeliveryRefused,
    DuplicateIgnored,
    EndpointEvent,
    LinkTestAnswered,
    MessageAccepted,
    MessageAcknowledged,
    MessageQueued,
    MessageReceived,
    MessageRejected,
    Overdue,
    ReceiptQueued,
    ReceiptStored,
    RelayBack,
    RelayConnected,
    RelayOutage,
    RelaySuspected,
    event_name,
)
from hotline.endpoint.records import (
    EventRecord,
    InboxItem,
    LinkTestStatus,
    OutboxItem,
    StageTime,
    WitnessedCheckpoint,
)
from hotline.protocol.ids import format_id
from hotline.protocol.jsonview import body_to_json
from hotline.protocol.lifecycle import RecipientState, Step, state_after
from hotline.protocol.vocab import Stage

__all__ = [
    "checkpoint_json",
    "event_json",
    "history_json",
    "inbox_json",
    "link_tests_json",
    "outbox_json",
]

JsonObject = dict[str, object]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _id(raw: bytes | None) -> str | None:
    return None if raw is None else format_id(raw)


def inbox_json(item: InboxItem) -> JsonObject:
    """A received message for the console."""
    return {
        "id": format_id(item.id),
        "from": item.sender,
        "t": item.type.value,
        "precedence": item.precedence.value,
        "status": item.status.value,
        "incident": _id(item.incident),
        "sent_ts": item.sent_ts,
        "received_ms": item.received_ms,
        "index": item.index,
        "body": json.loads(item.body_json),
        "stages": {"delivered": item.delivered_ms, "acknowledged": item.acknowledged_ms},
        "acknowledged": item.acknowledged_ms is not None,
        "acknowledged_ms": item.acknowledged_ms,
        "action": None if item.action is None else item.action.value,
        "note": item.note,
        "ack_operator": item.ack_operator,
        "duplicates": item.duplicates,
    }


def _stage_json(stage: StageTime | None) -> JsonObject | None:
    if stage is None:
        return None
    out: JsonObject = {
        "ts": stage.their_ts,
        "received_ms": stage.received_ms,
        "index": stage.index,
    }
    if stage.action is not None:
        out["action"] = stage.action.value
    if stage.note is not None:
        out["note"] = stage.note
    if stage.reason is not None:
        out["reason"] = stage.reason
    if stage.operator is not None:
        out["operator"] = stage.operator
    return out


def recipient_state(item: OutboxItem, party: str) -> RecipientState:
    """Where ``party`` stands with our message: its receipts, in the order they reached us."""
    start = RecipientState.QUEUED if item.accepted_index is None else RecipientState.ACCEPTED
    return state_after((Step.of(s.stage) for s in item.stages if s.party == party), start)


def outbox_json(item: OutboxItem) -> JsonObject:
    """A message we sent, with the relay's answer and each recipient's stages and state."""
    accepted = (
        None
        if item.accepted_index is None
        else {
            "index": item.accepted_index,
            "ts": item.accepted_ts,
            "received_ms": item.accepted_received_ms,
        }
    )
    rejected = (
        None
        if item.rejection is None
        else {
            "code": item.rejection.code,
            "sentence": item.rejection.sentence,
            "path": item.rejection.path,
            "at_ms": item.rejection.at_ms,
        }
    )
    return {
        "id": format_id(item.id),
        "t": item.type.value,
        "to": list(item.recipients),
        "precedence": item.precedence.value,
        "status": item.status.value,
        "incident": _id(item.incident),
        "created_ms": item.created_ms,
        "body": json.loads(item.body_json),
        "accepted": accepted,
        "rejected": rejected,
        "recipients": {
            party: {
                **{stage.value: _stage_json(item.stage(party, stage)) for stage in Stage},
                "state": recipient_state(item, party).value,
            }
            for party in item.recipients
        },
    }


def checkpoint_json(item: WitnessedCheckpoint | None, now_ms: int) -> JsonObject:
    """The last checkpoint we judged (all null when none yet)."""
    if item is None:
        return {"size": None, "root": None, "age_ms": None, "consistent": None,
                "cosigned": None, "at_ms": None, "reason": None}
    return {
        "size": item.size,
        "root": _b64(item.root),
        "age_ms": max(0, now_ms - item.at_ms),
        "consistent": item.consistent,
        "cosigned": item.cosigned,
        "at_ms": item.at_ms,
        "reason": item.reason,
    }


def link_tests_json(status: LinkTestStatus, now_ms: int) -> JsonObject:
    return {
        "last_test_id": _id(status.last_test_id),
        "last_answered_ms": status.last_answered_ms,
        "age_ms": None
        if status.last_answered_ms is None
        else max(0, now_ms - status.last_answered_ms),
        "answered": status.answered,
    }


def history_json(record: EventRecord) -> JsonObject:
    return {
        "number": record.number,
        "at_ms": record.at_ms,
        "event": record.name,
        "alarm": record.alarm,
        "ref": _id(record.ref),
        "party": record.party,
        "stage": record.stage,
        "detail": json.loads(record.detail),
    }


def _payload(event: EndpointEvent) -> JsonObject:
    if isinstance(event, MessageQueued):
        return {"id": format_id(event.body.id), "t": event.body.type.value,
                "to": list(event.recipients), "precedence": event.body.precedence.value,
                "status": event.body.status.value, "created_ms": event.created_ms,
                "body": body_to_json(event.body),
                "states": dict.fromkeys(event.recipients, RecipientState.QUEUED.value)}
    if isinstance(event, ReceiptQueued):
        return {"id": format_id(event.body.id), "ref": format_id(event.body.ref),
                "stage": event.body.stage.value, "created_ms": event.created_ms,
                "link_test": event.link_test}
    if isinstance(event, MessageReceived):
        body = event.body
        return {"id": format_id(body.id), "from": body.sender, "t": body.type.value,
                "precedence": body.precedence.value, "status": body.status.value,
                "received_ms": event.received_ms, "index": event.index,
                "body": body_to_json(body)}
    if isinstance(event, DuplicateIgnored):
        return {"id": format_id(event.id), "from": event.sender,
                "received_ms": event.received_ms, "index": event.index}
    if isinstance(event, ReceiptStored):
        return {"ref": format_id(event.ref), "party": event.party, "stage": event.stage.value,
                "receipt_id": format_id(event.receipt_id), "ts": event.their_ts,
                "received_ms": event.received_ms, "index": event.index,
                "action": None if event.action is None else event.action.value,
                "note": event.note, "reason": event.reason, "operator": event.operator,
                "state": event.state.value}
    if isinstance(event, MessageAccepted):
        return {"id": format_id(event.id), "index": event.index, "ts": event.accepted_ts,
                "received_ms": event.received_ms, "receipt": event.receipt,
                "states": {party: state.value for party, state in event.states}}
    if isinstance(event, MessageRejected):
        return {"id": _id(event.id or None), "code": event.code, "sentence": event.sentence,
                "path": event.path, "received_ms": event.received_ms, "receipt": event.receipt}
    if isinstance(event, DeliveryRefused):
        return {"code": event.code, "sentence": event.sentence, "path": event.path,
                "from": event.sender, "index": event.index, "received_ms": event.received_ms}
    if isinstance(event, LinkTestAnswered):
        return {"id": format_id(event.test_id), "ts": event.test_ts,
                "received_ms": event.received_ms}
    if isinstance(event, MessageAcknowledged):
        return {"id": format_id(event.id), "from": event.sender,
                "action": None if event.action is None else event.action.value,
                "note": event.note, "acknowledged_ms": event.acknowledged_ms,
                "operator": event.operator}
    if isinstance(event, CheckpointWitnessed):
        return {"size": event.size, "root": _b64(event.root), "at_ms": event.witnessed_ms}
    if isinstance(event, CheckpointInconsistent):
        return {"size": event.size, "root": _b64(event.root), "held_size": event.held_size,
                "held_root": _b64(event.held_root), "reason": event.reason,
                "at_ms": event.received_ms}
    if isinstance(event, CheckpointRefused):
        return {"reason": event.reason, "at_ms": event.received_ms}
    if isinstance(event, Overdue):
        return {"id": format_id(event.ref), "party": event.party, "stage": event.stage.value,
                "role": event.role.value, "precedence": event.precedence.value,
                "due_ms": event.due_ms, "at_ms": event.at_ms}
    if isinstance(event, RelayConnected):
        return {"at_ms": event.at_ms, "log_size": event.log_size}
    if isinstance(event, RelayOutage):
        return {"at_ms": event.at_ms, "since_ms": event.since_ms, "waiting": event.waiting,
                "reason": event.reason}
    if isinstance(event, RelayBack):
        return {"at_ms": event.at_ms, "unavailable_ms": event.unavailable_ms}
    if isinstance(event, RelaySuspected):
        return {"id": _id(event.ref or None), "party": event.party or None,
                "index": event.index, "sentence": event.sentence,
                "evidence": dict(event.evidence), "at_ms": event.at_ms}
    return {"at_ms": event.at_ms, "reason": event.reason}


def event_json(event: EndpointEvent) -> JsonObject:
    """An event for the console's stream: its name, whether it is an alarm, its fields."""
    return {"event": event_name(event), "alarm": event.alarm, **_payload(event)}
