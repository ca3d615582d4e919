"""What happened at an endpoint: one small frozen class per meaning.

The sans-IO core (:mod:`hotline.endpoint.core`) returns these; the edge
journals them (:mod:`hotline.endpoint.journal`), logs them and streams them to
the console. Events that carry something we signed (``MessageQueued``,
``ReceiptQueued``) hold the exact frame, so the journal can keep it before a
single byte of it is sent.

``RelayConnected`` and ``RelayDisconnected`` come from the edge (the
connection), never from the core. Events whose ``alarm`` is true deserve a
duty officer's attention: missed deadlines, refused deliveries, rejections of
what we sent, anything wrong with the relay's checkpoints, and every way the
relay was caught misbehaving (:class:`RelaySuspected`, from the core's guard).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from hotline.endpoint.alarms import RelaySuspected
from hotline.protocol.bodies import ReceiptBody, RoutedBody
from hotline.protocol.lifecycle import RecipientState
from hotline.protocol.vocab import AckAction, Precedence, Stage

__all__ = [
    "CheckpointInconsistent",
    "CheckpointRefused",
    "CheckpointWitnessed",
    "DeliveryRefused",
    "DuplicateIgnored",
    "EndpointEvent",
    "LinkTestAnswered",
    "MessageAccepted",
    "MessageAcknowledged",
    "MessageQueued",
    "MessageReceived",
    "MessageRejected",
    "Overdue",
    "ReceiptQueued",
    "ReceiptStored",
    "RelayBack",
    "RelayConnected",
    "RelayDisconnected",
    "RelayOutage",
    "RelaySuspected",
    "Role",
    "event_name",
]


class Role(enum.StrEnum):
    """Whose deadline was missed: a recipient of ours, or our own operator."""

    SENDER = "sender"  # we sent it; a recipient is late
    RECIPIENT = "recipient"  # we received it; our operator is late to acknowledge


@dataclass(frozen=True, slots=True)
class MessageQueued:
    """We signed a message and put it in the outbox (sent now if connected)."""

    alarm: ClassVar[bool] = False
    frame: bytes
    body: RoutedBody
    body_hash: bytes
    recipients: tuple[str, ...]
    created_ms: int


@dataclass(frozen=True, slots=True)
class ReceiptQueued:
    """We signed a receipt (delivered or acknowledged) and put it in the outbox."""

    alarm: ClassVar[bool] = False
    frame: bytes
    body: ReceiptBody
    body_hash: bytes
    created_ms: int
    link_test: bool


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A message addressed to us arrived, verified end to end, for the first time."""

    alarm: ClassVar[bool] = False
    frame: bytes
    body: RoutedBody
    body_hash: bytes
    received_ms: int
    index: int


@dataclass(frozen=True, slots=True)
class DuplicateIgnored:
    """A message we already hold arrived again; answered again, not shown twice."""

    alarm: ClassVar[bool] = False
    id: bytes
    sender: str
    received_ms: int
    index: int


@dataclass(frozen=True, slots=True)
class ReceiptStored:
    """A recipient's signed receipt for one of our messages, and its ``state`` after it."""

    alarm: ClassVar[bool] = False
    ref: bytes
    party: str
    stage: Stage
    receipt_id: bytes
    their_ts: int
    received_ms: int
    index: int
    state: RecipientState
    action: AckAction | None = None
    note: str | None = None
    reason: str | None = None
    operator: str | None = None  # who acknowledged, as their receipt names them


@dataclass(frozen=True, slots=True)
class MessageAccepted:
    """The relay logged something we sent (a message or a receipt) at ``index``."""

    alarm: ClassVar[bool] = False
    id: bytes
    index: int
    accepted_ts: int  # the relay's clock, from its signed receipt
    received_ms: int  # our clock, when its receipt arrived
    receipt: bool
    states: tuple[tuple[str, RecipientState], ...] = ()  # each recipient's, now it is logged


@dataclass(frozen=True, slots=True)
class MessageRejected:
    """The relay refused something we sent; it will never be delivered."""

    alarm: ClassVar[bool] = True
    id: bytes
    code: str
    sentence: str
    path: str
    received_ms: int
    receipt: bool


@dataclass(frozen=True, slots=True)
class DeliveryRefused:
    """We refused a delivered envelope (forged, misaddressed, from the wrong party)."""

    alarm: ClassVar[bool] = True
    code: str
    sentence: str
    path: str
    sender: str  # as the frame claims, or "" when unreadable
    index: int  # the relay's log index, or -1
    received_ms: int


@dataclass(frozen=True, slots=True)
class LinkTestAnswered:
    """A relay link test arrived and was answered with a delivered receipt."""

    alarm: ClassVar[bool] = False
    test_id: bytes
    test_ts: int
    received_ms: int


@dataclass(frozen=True, slots=True)
class MessageAcknowledged:
    """Our operator acknowledged a received message (a receipt goes to its sender)."""

    alarm: ClassVar[bool] = False
    id: bytes
    sender: str
    action: AckAction | None
    note: str | None
    acknowledged_ms: int
    operator: str | None = None


@dataclass(frozen=True, slots=True)
class CheckpointWitnessed:
    """A relay checkpoint verified and consistent with the last one we hold; cosigned."""

    alarm: ClassVar[bool] = False
    size: int
    root: bytes
    note: bytes
    line: str
    witnessed_ms: int


@dataclass(frozen=True, slots=True)
class CheckpointInconsistent:
    """A relay-signed checkpoint that contradicts one we hold: not cosigned."""

    alarm: ClassVar[bool] = True
    size: int
    root: bytes
    note: bytes
    held_size: int
    held_root: bytes
    reason: str
    received_ms: int


@dataclass(frozen=True, slots=True)
class CheckpointRefused:
    """A checkpoint note that is malformed or not signed by the relay's key."""

    alarm: ClassVar[bool] = True
    note: bytes
    reason: str
    received_ms: int


@dataclass(frozen=True, slots=True)
class Overdue:
    """A deadline passed: ``party`` has not reached ``stage`` for message ``ref``."""

    alarm: ClassVar[bool] = True
    ref: bytes
    party: str
    stage: Stage
    role: Role
    precedence: Precedence
    due_ms: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class RelayConnected:
    """The relay welcomed us (edge event)."""

    alarm: ClassVar[bool] = False
    at_ms: int
    log_size: int


@dataclass(frozen=True, slots=True)
class RelayDisconnected:
    """The connection to the relay ended or could not be made (edge event)."""

    alarm: ClassVar[bool] = False
    at_ms: int
    reason: str


@dataclass(frozen=True, slots=True)
class RelayOutage:
    """Nothing we sent was accepted for a while though envelopes wait (edge event, alarm).

    No relay (replica) could log them: unreachable, hung, or answering ``busy``
    (its log lost its quorum). The envelopes stay in the outbox and are sent
    again until accepted.
    """

    alarm: ClassVar[bool] = True
    at_ms: int
    since_ms: int  # the last acceptance, or when the first waiting envelope was queued
    waiting: int  # envelopes waiting for acceptance
    reason: str


@dataclass(frozen=True, slots=True)
class RelayBack:
    """After a ``relay_unavailable`` alarm: the relay accepts again (edge event)."""

    alarm: ClassVar[bool] = False
    at_ms: int
    unavailable_ms: int  # from the outage's since_ms to now


EndpointEvent = (
    MessageQueued
    | ReceiptQueued
    | MessageReceived
    | DuplicateIgnored
    | ReceiptStored
    | MessageAccepted
    | MessageRejected
    | DeliveryRefused
    | LinkTestAnswered
    | MessageAcknowledged
    | CheckpointWitnessed
    | CheckpointInconsistent
    | CheckpointRefused
    | Overdue
    | RelayConnected
    | RelayDisconnected
    | RelayOutage
    | RelayBack
    | RelaySuspected
)

_NAMES: dict[type, str] = {
    MessageQueued: "message_queued",
    ReceiptQueued: "receipt_queued",
    MessageReceived: "message_received",
    DuplicateIgnored: "duplicate_ignored",
    ReceiptStored: "receipt_stored",
    MessageAccepted: "message_accepted",
    MessageRejected: "message_rejected",
    DeliveryRefused: "delivery_refused",
    LinkTestAnswered: "link_test_answered",
    MessageAcknowledged: "message_acknowledged",
    CheckpointWitnessed: "checkpoint_witnessed",
    CheckpointInconsistent: "checkpoint_inconsistent",
    CheckpointRefused: "checkpoint_refused",
    Overdue: "overdue",
    RelayConnected: "relay_connected",
    RelayDisconnected: "relay_disconnected",
    RelayOutage: "relay_unavailable",
    RelayBack: "relay_available",
}


def event_name(event: EndpointEvent) -> str:
    """The stable snake_case name of an event (log lines, SSE, the journal).

    An alarm against the relay is named for what the relay was caught doing
    (``not_accepted``, ``split_view``, …: :class:`~hotline.endpoint.alarms.AlarmKind`).
    """
    if isinstance(event, RelaySuspected):
        return event.kind.value
    return _NAMES[type(event)]
