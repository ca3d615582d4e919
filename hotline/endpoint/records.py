"""Rows of the journal as the console and the API read them: frozen values.

Bodies travel as their JSON view text (``body_json``), exactly as
:func:`hotline.protocol.jsonview.body_to_json` wrote it when the envelope was
signed or verified; nothing here is ever re-signed.
"""

from __future__ import annotations

from dataclasses import dataclass

from hotline.protocol.bodies import Recipients
from hotline.protocol.vocab import AckAction, BodyType, Precedence, Stage, Status

__all__ = [
    "Acknowledgement",
    "EventRecord",
    "FeedPost",
    "InboxItem",
    "IncidentHead",
    "LinkTestStatus",
    "OutboxItem",
    "Rejection",
    "StageTime",
    "StoredMessage",
    "WitnessedCheckpoint",
]


@dataclass(frozen=True, slots=True)
class StageTime:
    """When a recipient reached a stage for one of our messages."""

    party: str
    stage: Stage
    their_ts: int  # the recipient's clock, from its signed receipt
    received_ms: int  # our clock, when the receipt reached us
    index: int  # the receipt's log index at the relay
    action: AckAction | None = None
    note: str | None = None
    reason: str | None = None
    operator: str | None = None  # who acknowledged, as the recipient's receipt names them


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why the relay refused something we sent."""

    code: str
    sentence: str
    path: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A message we sent, with the relay's answer and each recipient's stages."""

    id: bytes
    seq: int
    type: BodyType
    recipients: tuple[str, ...]
    precedence: Precedence
    status: Status
    incident: bytes | None
    created_ms: int
    body_json: str
    accepted_index: int | None
    accepted_ts: int | None  # the relay's clock, from its signed accepted receipt
    accepted_received_ms: int | None  # our clock
    rejection: Rejection | None
    stages: tuple[StageTime, ...]

    def stage(self, party: str, stage: Stage) -> StageTime | None:
        """The first receipt of ``party`` for ``stage``, if any."""
        return next((s for s in self.stages if s.party == party and s.stage is stage), None)


@dataclass(frozen=True, slots=True)
class InboxItem:
    """A message we received, once, however often it was delivered."""

    id: bytes
    sender: str
    type: BodyType
    precedence: Precedence
    status: Status
    incident: bytes | None
    sent_ts: int  # the sender's clock
    received_ms: int  # our clock
    index: int  # the message's log index at the relay
    body_json: str
    delivered_ms: int | None  # when we signed our delivered receipt
    duplicates: int
    acknowledged_ms: int | None
    action: AckAction | None
    note: str | None
    ack_operator: str | None = None  # which of our operators acknowledged


@dataclass(frozen=True, slots=True)
class WitnessedCheckpoint:
    """A relay checkpoint we judged: cosigned when consistent, an alarm when not."""

    size: int
    root: bytes
    note: bytes
    consistent: bool
    cosigned: bool
    at_ms: int
    reason: str | None


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One line of the endpoint's event and alarm history."""

    number: int
    at_ms: int
    name: str
    alarm: bool
    ref: bytes | None
    party: str | None
    stage: str | None
    detail: str  # a JSON object


@dataclass(frozen=True, slots=True)
class LinkTestStatus:
    """The last relay link test we answered, and how many: their answers stay in the outbox
    (``answers_waiting``) until the relay logs them, then only their count does."""

    last_test_id: bytes | None
    last_answered_ms: int | None
    answered: int
    answers_logged: int = 0
    answers_waiting: int = 0


# ----------------------------------------------------------------------------- sensor feeds


@dataclass(frozen=True, slots=True)
class FeedPost:
    """A sensor feed's post that was turned into a message: replayed for its
    Idempotency-Key, followed for its sensor track."""

    number: int
    feed: str
    route: str  # "alerts" or "cap"
    idempotency_key: str | None
    request_hash: bytes  # SHA-256 of the route and the request, to tell a retry from a reuse
    posted_ms: int
    type: BodyType
    incident: bytes
    message_id: bytes | None  # None only while it is being sent


@dataclass(frozen=True, slots=True)
class IncidentHead:
    """The last message we sent in an incident that the relay did not reject."""

    id: bytes
    incident: bytes
    type: BodyType
    to: Recipients
    expires: int | None  # None for a cancel


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A warning, update, cancel or text we sent or received, as journaled."""

    id: bytes
    sender: str
    type: BodyType
    incident: bytes | None
    ts: int  # the sender's clock
    body_json: str
    ours: bool


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """A signed acknowledged receipt for a message: ours, or a recipient's."""

    party: str
    receipt_id: bytes
    ts: int  # the acknowledging party's clock, from its signed receipt
