"""What the core needs to remember across restarts, as the journal hands it back.

:class:`CoreState` is a snapshot read from the journal at start; the core
rebuilds its working sets from it and from then on keeps them up to date
itself, while the journal records every event the core returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hotline.protocol.lifecycle import RecipientState, state_of
from hotline.protocol.vocab import Precedence, Stage

__all__ = [
    "Answer",
    "CoreState",
    "HeldCheckpoint",
    "HeldMessage",
    "OverdueKey",
    "PendingEnvelope",
    "SentMessage",
]


@dataclass(frozen=True, slots=True)
class PendingEnvelope:
    """Something we signed that the relay has neither accepted nor rejected yet."""

    seq: int
    id: bytes
    frame: bytes
    body_hash: bytes
    receipt: bool


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One of our messages, with what its recipients have done so far."""

    id: bytes
    body_hash: bytes
    recipients: tuple[str, ...]
    precedence: Precedence
    accepted_ms: int | None  # our clock when the relay's accepted receipt arrived
    rejected: bool
    reached: frozenset[tuple[str, Stage]] = frozenset()

    def state_of(self, party: str) -> RecipientState:
        """Where ``party`` stands with this message (:mod:`hotline.protocol.lifecycle`)."""
        stages = (stage for who, stage in self.reached if who == party)
        return state_of(stages, logged=self.accepted_ms is not None)


@dataclass(frozen=True, slots=True)
class HeldMessage:
    """A message in our inbox: enough to recognise a duplicate and to track its deadline."""

    id: bytes
    sender: str
    body_hash: bytes
    precedence: Precedence
    received_ms: int
    acknowledged: bool


@dataclass(frozen=True, slots=True)
class Answer:
    """Our delivered receipt for a message or link test, sent again for a duplicate."""

    ref: bytes
    receipt_id: bytes
    frame: bytes


@dataclass(frozen=True, slots=True)
class HeldCheckpoint:
    """The last checkpoint we witnessed as consistent."""

    size: int
    root: bytes
    note: bytes


@dataclass(frozen=True, slots=True)
class OverdueKey:
    """One deadline: ``party`` reaching ``stage`` for message ``ref``."""

    ref: bytes
    party: str
    stage: Stage


@dataclass(frozen=True, slots=True)
class CoreState:
    """The snapshot of an endpoint's memory; the default is a new endpoint's."""

    next_seq: int = 1
    since: int = -1
    pending: tuple[PendingEnvelope, ...] = ()
    sent: tuple[SentMessage, ...] = ()
    inbox: tuple[HeldMessage, ...] = ()
    answers: tuple[Answer, ...] = ()
    fired: frozenset[OverdueKey] = field(default_factory=frozenset)
    checkpoint: HeldCheckpoint | None = None
    # several relays: what each relay has not answered yet, and its last witnessed checkpoint
    path_pending: Mapping[str, tuple[PendingEnvelope, ...]] = field(default_factory=dict)
    path_checkpoints: Mapping[str, HeldCheckpoint] = field(default_factory=dict)
    path_since: Mapping[str, int] = field(default_factory=dict)
    # several relays: what each relay delivered to us (id → our time), and per message to us
    # the relay that brought it first with our time of it
    path_delivered: Mapping[str, Mapping[bytes, int]] = field(default_factory=dict)
    path_first: Mapping[bytes, tuple[str, int]] = field(default_factory=dict)
