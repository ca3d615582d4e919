"""A relay holding the real key cheats; honest endpoints name it (make hostile-relay, reduced)."""

from __future__ import annotations

from pathlib import Path

import pytest

from faults.evil_relay import Attack
from faults.hostile_relay import EXPECT, run_attack


@pytest.mark.slow
@pytest.mark.parametrize(
    "attack",
    [Attack.OMIT_FROM_LOG, Attack.REORDER, Attack.UNFOUNDED_REFUSAL, Attack.SPLIT_VIEW,
     Attack.RECEIPT_NON_RECIPIENT],
)
async def test_the_attack_is_named_at_the_endpoints_it_touched(
    tmp_path: Path, attack: Attack
) -> None:
    """Its alarm reaches the journal, GET /api/alarms and the console's list within the bound."""
    outcome = await run_attack(tmp_path, attack)
    assert outcome.detected, outcome.line(EXPECT[attack])
    assert max(outcome.seen_at.values()) <= EXPECT[attack].bound_s


@pytest.mark.slow
async def test_an_honest_relay_raises_no_alarm(tmp_path: Path) -> None:
    """The same network and traffic with no attack: not one alarm at any endpoint."""
    outcome = await run_attack(tmp_path, None, clean_s=6.0)
    assert outcome.alarms == []
