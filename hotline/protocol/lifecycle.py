"""One recipient's life with one message, as a table: states, steps, what each settles.

Everything that decides what a receipt means lives here, and is read by every
party that follows a message to a recipient: the relay core (what it resends,
which deadlines it logs as ``overdue``), the endpoint (its deadline alarms, the
``state`` its local API shows), the per-link figures (what each receipt counts)
and the endpoint's journal. No copy of these rules lives anywhere else.

Rules:

1. A recipient's state changes only by the steps of :data:`TRANSITIONS`: the
   message being logged by the relay (:attr:`Step.LOGGED`) and the recipient's
   receipts (one step per :class:`~hotline.protocol.vocab.Stage`), taken in the
   order they are logged (relay, figures) or reach the sender (endpoint).
2. ``acknowledged`` implies ``delivered``: a person cannot see what the system
   never got. An ``acknowledged`` receipt that comes first settles both stages;
   a ``delivered`` receipt after it changes nothing (:func:`expects`: the relay
   admits only receipts that still move the state).
3. ``rejected`` ends what the recipient owes: nothing more is resent to it or
   watched for it. It reaches neither ``delivered`` nor ``acknowledged``.
4. ``acknowledged`` and ``rejected`` are final and contradict each other: a
   step missing from :data:`TRANSITIONS` (``rejected`` after ``acknowledged``,
   ``acknowledged`` after ``rejected``) is illegal. It changes nothing; the relay
   refuses it (``replay``: not owed), the figures ignore one found in a log,
   and the sender's endpoint refuses one delivered to it with an alarm
   (``delivery_refused``).
5. A deadline is an alarm only for a stage the recipient still owes
   (:data:`OWES`): once a stage's deadline passes while it is owed, the
   recipient is ``overdue`` for that stage, reported once. A stage settled, by
   its own receipt or by one that implies it, is never overdue.

The table, read as "in state (row), step (column) leads to":

============  ========  ============  ============  ============
state         logged    delivered     acknowledged  rejected
============  ========  ============  ============  ============
queued        accepted  delivered     acknowledged  rejected
accepted      accepted  delivered     acknowledged  rejected
delivered     delivered delivered     acknowledged  rejected
acknowledged  (same)    acknowledged  acknowledged  *illegal*
rejected      (same)    rejected      *illegal*     rejected
============  ========  ============  ============  ============

``queued`` exists only at the sender (signed, not yet logged); a receipt there
proves the relay logged the message, so it moves on as from ``accepted``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

from hotline.protocol.vocab import Stage

__all__ = [
    "OWES",
    "REACHED",
    "TRANSITIONS",
    "RecipientState",
    "Step",
    "advance",
    "expects",
    "finished",
    "implies",
    "legal",
    "owes",
    "reached",
    "settles",
    "state_after",
    "state_of",
]


class RecipientState(enum.StrEnum):
    """Where one recipient stands with one message."""

    QUEUED = "queued"  # signed by the sender, not yet in the relay's log
    ACCEPTED = "accepted"  # in the log: the recipient owes delivered and acknowledged
    DELIVERED = "delivered"  # its system has it: a person still owes acknowledged
    ACKNOWLEDGED = "acknowledged"  # a person saw it (so it was delivered): final
    REJECTED = "rejected"  # the recipient refused it: final, nothing more owed


class Step(enum.StrEnum):
    """What moves a recipient's state: the relay logging the message, or a receipt."""

    LOGGED = "logged"
    DELIVERED = "delivered"
    ACKNOWLEDGED = "acknowledged"
    REJECTED = "rejected"

    @classmethod
    def of(cls, stage: Stage) -> Step:
        """The step a receipt of ``stage`` takes."""
        return _STEP_OF[stage]


_STEP_OF: Final = {stage: Step(stage.value) for stage in Stage}
_STAGES: Final = tuple(Stage)  # in the order of the enum: iterating the class costs more


_Q, _A, _D, _K, _R = (
    RecipientState.QUEUED,
    RecipientState.ACCEPTED,
    RecipientState.DELIVERED,
    RecipientState.ACKNOWLEDGED,
    RecipientState.REJECTED,
)

TRANSITIONS: Final[Mapping[RecipientState, Mapping[Step, RecipientState]]] = MappingProxyType({
    _Q: {Step.LOGGED: _A, Step.DELIVERED: _D, Step.ACKNOWLEDGED: _K, Step.REJECTED: _R},
    _A: {Step.LOGGED: _A, Step.DELIVERED: _D, Step.ACKNOWLEDGED: _K, Step.REJECTED: _R},
    _D: {Step.LOGGED: _D, Step.DELIVERED: _D, Step.ACKNOWLEDGED: _K, Step.REJECTED: _R},
    _K: {Step.LOGGED: _K, Step.DELIVERED: _K, Step.ACKNOWLEDGED: _K},
    _R: {Step.LOGGED: _R, Step.DELIVERED: _R, Step.REJECTED: _R},
})
"""The legal steps from each state and where they lead; a missing step is illegal."""

_BOTH: Final = frozenset({Stage.DELIVERED, Stage.ACKNOWLEDGED})

OWES: Final[Mapping[RecipientState, frozenset[Stage]]] = MappingProxyType({
    _Q: _BOTH,
    _A: _BOTH,
    _D: frozenset({Stage.ACKNOWLEDGED}),
    _K: frozenset(),
    _R: frozenset(),
})
"""The stages the recipient still owes: resent for (``delivered``), watched, alarmed on."""

REACHED: Final[Mapping[RecipientState, frozenset[Stage]]] = MappingProxyType({
    _Q: frozenset(),
    _A: frozenset(),
    _D: frozenset({Stage.DELIVERED}),
    _K: _BOTH,
    _R: frozenset({Stage.REJECTED}),
})
"""The stages the recipient has reached, by their own receipt or one implying them."""


def legal(state: RecipientState, step: Step) -> bool:
    """Whether ``step`` is a legal move from ``state`` (rule 4)."""
    return step in TRANSITIONS[state]


def advance(state: RecipientState, step: Step) -> RecipientState:
    """The state after ``step``; an illegal step leaves ``state`` as it was (rule 4)."""
    return TRANSITIONS[state].get(step, state)


def state_after(
    steps: Iterable[Step], start: RecipientState = RecipientState.QUEUED
) -> RecipientState:
    """The state reached from ``start`` by ``steps``, in order."""
    state = start
    for step in steps:
        state = advance(state, step)
    return state


def state_of(stages: Iterable[Stage], *, logged: bool) -> RecipientState:
    """The state of a recipient known by the set of stages its receipts took.

    Every legal order of the same receipts ends in the same state, so the set is
    enough once illegal receipts are kept out (as the sender's endpoint does).
    """
    start = RecipientState.ACCEPTED if logged else RecipientState.QUEUED
    taken = frozenset(stages)
    return state_after((_STEP_OF[stage] for stage in _STAGES if stage in taken), start)


def expects(state: RecipientState) -> frozenset[Stage]:
    """The receipt stages that would still move a recipient in ``state``: what a relay admits.

    A repeat (``delivered`` again), one implied already (``delivered`` after
    ``acknowledged``) and an illegal one are not expected.
    """
    return EXPECTS[state]


def _expects(state: RecipientState) -> frozenset[Stage]:
    return frozenset(
        stage for stage in Stage
        if legal(state, Step.of(stage)) and advance(state, Step.of(stage)) is not state
    )


EXPECTS: Final[Mapping[RecipientState, frozenset[Stage]]] = MappingProxyType(
    {state: _expects(state) for state in RecipientState}
)
"""``expects`` for every state, worked out once from the table."""


def owes(state: RecipientState, stage: Stage) -> bool:
    """Whether a recipient in ``state`` still owes ``stage`` (so its deadline is an alarm)."""
    return stage in OWES[state]


def reached(before: RecipientState, after: RecipientState) -> frozenset[Stage]:
    """The stages newly reached by moving from ``before`` to ``after`` (each counted once)."""
    return REACHED[after] - REACHED[before]


def finished(state: RecipientState) -> bool:
    """Whether the recipient owes nothing more for the message."""
    return not OWES[state]


def settles(stage: Stage) -> frozenset[Stage]:
    """The stages a receipt of ``stage`` settles, whatever came before: no longer owed."""
    return OWES[RecipientState.ACCEPTED] - OWES[advance(RecipientState.ACCEPTED, Step.of(stage))]


def implies(stage: Stage) -> frozenset[Stage]:
    """The stages a receipt of ``stage`` reaches: itself, and ``delivered`` if acknowledged."""
    return REACHED[advance(RecipientState.ACCEPTED, Step.of(stage))]
