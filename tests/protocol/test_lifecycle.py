"""The recipient lifecycle table: its rules, and that its columns agree with each other."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from hotline.protocol.lifecycle import (
    OWES,
    REACHED,
    TRANSITIONS,
    RecipientState,
    Step,
    advance,
    expects,
    finished,
    implies,
    legal,
    owes,
    reached,
    settles,
    state_after,
    state_of,
)
from hotline.protocol.vocab import Stage

S = RecipientState
RECEIPTS = [Step.of(stage) for stage in Stage]


def test_every_state_has_a_row_and_every_stage_a_step() -> None:
    """The table covers every state, and every receipt stage has its step."""
    assert set(TRANSITIONS) == set(RecipientState) == set(OWES) == set(REACHED)
    assert {step.value for step in RECEIPTS} == {stage.value for stage in Stage}


def test_acknowledged_implies_delivered() -> None:
    """An acknowledgement that comes first settles and reaches delivered too."""
    after = advance(S.ACCEPTED, Step.ACKNOWLEDGED)
    assert after is S.ACKNOWLEDGED
    assert reached(S.ACCEPTED, after) == {Stage.DELIVERED, Stage.ACKNOWLEDGED}
    assert settles(Stage.ACKNOWLEDGED) == {Stage.DELIVERED, Stage.ACKNOWLEDGED}
    assert implies(Stage.ACKNOWLEDGED) == {Stage.DELIVERED, Stage.ACKNOWLEDGED}
    assert advance(after, Step.DELIVERED) is S.ACKNOWLEDGED


def test_rejected_ends_what_is_owed_but_reaches_no_delivery() -> None:
    """A rejection settles both deadlines and counts as neither delivered nor acknowledged."""
    assert settles(Stage.REJECTED) == {Stage.DELIVERED, Stage.ACKNOWLEDGED}
    assert implies(Stage.REJECTED) == {Stage.REJECTED}
    assert finished(S.REJECTED)
    assert reached(S.DELIVERED, S.REJECTED) == {Stage.REJECTED}


def test_acknowledged_and_rejected_contradict_each_other() -> None:
    """Rejected after acknowledged, or the reverse, is illegal and changes nothing."""
    assert not legal(S.ACKNOWLEDGED, Step.REJECTED)
    assert not legal(S.REJECTED, Step.ACKNOWLEDGED)
    assert advance(S.ACKNOWLEDGED, Step.REJECTED) is S.ACKNOWLEDGED
    assert advance(S.REJECTED, Step.ACKNOWLEDGED) is S.REJECTED
    illegal = [(s, step) for s in S for step in Step if not legal(s, step)]
    assert sorted(illegal) == sorted(
        [(S.ACKNOWLEDGED, Step.REJECTED), (S.REJECTED, Step.ACKNOWLEDGED)]
    )


def test_only_logging_moves_a_queued_recipient_to_accepted() -> None:
    """Logging moves queued to accepted and nothing else; a receipt proves the log has it."""
    assert advance(S.QUEUED, Step.LOGGED) is S.ACCEPTED
    for state in (S.ACCEPTED, S.DELIVERED, S.ACKNOWLEDGED, S.REJECTED):
        assert advance(state, Step.LOGGED) is state
    for step in RECEIPTS:
        assert advance(S.QUEUED, step) is advance(S.ACCEPTED, step)


def test_a_deadline_alarms_only_for_a_stage_still_owed() -> None:
    """Delivered is owed until delivered or acknowledged; acknowledged until a final state."""
    assert owes(S.ACCEPTED, Stage.DELIVERED)
    assert owes(S.ACCEPTED, Stage.ACKNOWLEDGED)
    assert not owes(S.DELIVERED, Stage.DELIVERED)
    assert owes(S.DELIVERED, Stage.ACKNOWLEDGED)
    assert not OWES[S.ACKNOWLEDGED]
    assert not OWES[S.REJECTED]


def test_what_a_step_settles_is_what_the_state_stops_owing() -> None:
    """For every legal receipt step, the owed stages shrink by exactly what the stage settles."""
    for state, step in itertools.product(RecipientState, RECEIPTS):
        if not legal(state, step):
            continue
        after = advance(state, step)
        assert OWES[after] == OWES[state] - settles(Stage(step.value)), (state, step)
        assert OWES[after] <= OWES[state]


@given(st.lists(st.sampled_from(list(Step)), max_size=12))
def test_owed_stages_never_come_back(steps: list[Step]) -> None:
    """Whatever receipts arrive in whatever order, a settled stage is never owed again."""
    state = S.QUEUED
    settled: set[Stage] = set()
    for step in steps:
        state = advance(state, step)
        settled |= set(Stage) - OWES[state] - {Stage.REJECTED}
        assert not (OWES[state] & settled)
    assert state is state_after(steps)


@given(st.permutations([Step.DELIVERED, Step.ACKNOWLEDGED]))
def test_delivered_and_acknowledged_in_any_order_end_acknowledged(steps: list[Step]) -> None:
    """Receipts reordered in transit still leave the recipient acknowledged, owing nothing."""
    assert state_after(steps, S.ACCEPTED) is S.ACKNOWLEDGED


@given(st.lists(st.sampled_from(list(Stage)), max_size=8))
def test_the_set_of_legal_receipts_decides_the_state(stages: list[Stage]) -> None:
    """Receipts kept only when legal give the same state in any order as their set does."""
    state, kept = S.ACCEPTED, []
    for stage in stages:
        if legal(state, Step.of(stage)):
            state = advance(state, Step.of(stage))
            kept.append(stage)
    assert state_of(kept, logged=True) is state
    assert state_of(reversed(kept), logged=True) is state


def test_a_relay_expects_only_receipts_that_still_move_the_state() -> None:
    """Everything before delivery; after it acknowledged or rejected; nothing once final."""
    assert expects(S.ACCEPTED) == set(Stage)
    assert expects(S.DELIVERED) == {Stage.ACKNOWLEDGED, Stage.REJECTED}
    assert expects(S.ACKNOWLEDGED) == frozenset()
    assert expects(S.REJECTED) == frozenset()
