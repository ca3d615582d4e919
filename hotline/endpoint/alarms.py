"""The named alarms an endpoint raises against the relay, and their bounds.

The relay is trusted for availability only. Whatever it does wrong — withhold,
refuse, hold back, reorder, replay, omit from the log, show two histories,
refuse proofs, log what it should refuse — ends in one :class:`RelaySuspected`
event of one of these kinds at an honest endpoint it touched, within the bound
stated for the kind (docs/threat-model.md lists them with the attack that shows
each one).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, Final

from hotline.protocol.vocab import Precedence

__all__ = [
    "ACCEPT_BOUND_MS",
    "PROOF_BOUND_MS",
    "AlarmKind",
    "Evidence",
    "RelaySuspected",
]


class AlarmKind(enum.StrEnum):
    """What the relay was caught doing; the value is the alarm's stable event name."""

    NOT_ACCEPTED = "not_accepted"
    REFUSAL_UNSIGNED = "refusal_unsigned"
    REFUSAL_UNFOUNDED = "refusal_unfounded"
    DELIVERY_LATE = "delivery_late"
    DELIVERY_REORDERED = "delivery_reordered"
    DELIVERY_STALE = "delivery_stale"
    NOT_IN_LOG = "not_in_log"
    INCLUSION_UNPROVEN = "inclusion_unproven"
    CONSISTENCY_UNPROVEN = "consistency_unproven"
    SPLIT_VIEW = "split_view"
    ENTRIES_MISMATCH = "entries_mismatch"
    LOG_RULE_BROKEN = "log_rule_broken"
    WITHHELD = "withheld"
    CHANNEL_WITHHELD = "channel_withheld"


ACCEPT_BOUND_MS: Final[dict[Precedence, int]] = {
    Precedence.FLASH: 10_000,
    Precedence.IMMEDIATE: 30_000,
    Precedence.PRIORITY: 60_000,
    Precedence.ROUTINE: 120_000,
}
"""How long something we signed may wait for the relay's ``accepted``, from queueing."""

PROOF_BOUND_MS: Final = 15_000
"""How long an index, a checkpoint or a peer's checkpoint may wait for its proof."""


Evidence = tuple[tuple[str, str | int], ...]
"""What shows it, as (name, value) pairs: ids and hashes in hex, indexes and times as ints."""


@dataclass(frozen=True, slots=True)
class RelaySuspected:
    """The relay did something an honest relay never does; ``kind`` names it."""

    alarm: ClassVar[bool] = True
    kind: AlarmKind
    sentence: str
    at_ms: int
    ref: bytes = b""  # the message concerned, if any
    party: str = ""  # the other party concerned, if any
    index: int = -1  # the log index concerned, if any
    evidence: Evidence = ()
    relay: str = ""  # several relays: the relay caught
