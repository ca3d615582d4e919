"""The network phase end to end, reduced: one round of faults, a short blackhole."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from faults.check import Arrival
from faults.network import (
    FaultKind,
    Verdict,
    count_out_of_order,
    judge_deadline,
    plan_round,
    run_network,
)

ENDPOINTS = ("BY", "LT", "LV", "EE", "PL")


def test_a_round_plays_every_kind_once_on_distinct_endpoints_blackhole_first() -> None:
    """A planned round has each fault kind once, one per endpoint, the blackhole at 0 s."""
    steps = plan_round(random.Random(5), ENDPOINTS, blackhole_s=10.0, shape_s=6.0)
    assert sorted(s.kind for s in steps) == sorted(FaultKind)
    assert sorted(s.endpoint for s in steps) == sorted(ENDPOINTS)
    assert (steps[0].kind, steps[0].at_s, steps[0].lasts_s) == (FaultKind.BLACKHOLE, 0.0, 10.0)
    assert [s.at_s for s in steps] == sorted(s.at_s for s in steps)


def test_the_same_seed_plans_the_same_round() -> None:
    """Plans are a pure function of the seed."""
    def plan(seed: int) -> object:
        return plan_round(random.Random(seed), ENDPOINTS, blackhole_s=10.0, shape_s=6.0)

    assert plan(9) == plan(9)
    assert plan(9) != plan(10)


def test_an_overdue_is_judged_against_when_the_stage_was_reached() -> None:
    """Late and reported, or in time and silent, is right; the opposite is counted."""
    judge = judge_deadline
    assert judge(0, 9_000, overdue=True, limit_ms=5_000, end_ms=20_000) is Verdict.OK
    assert judge(0, 9_000, overdue=False, limit_ms=5_000, end_ms=20_000) is Verdict.UNREPORTED
    assert judge(0, 1_000, overdue=True, limit_ms=5_000, end_ms=20_000) is Verdict.FALSE_ALARM
    assert judge(0, 1_000, overdue=False, limit_ms=5_000, end_ms=20_000) is Verdict.OK
    assert judge(0, 5_200, overdue=False, limit_ms=5_000, end_ms=20_000) is Verdict.UNJUDGED
    assert judge(0, None, overdue=False, limit_ms=5_000, end_ms=20_000) is Verdict.UNREPORTED
    assert judge(0, None, overdue=False, limit_ms=5_000, end_ms=3_000) is Verdict.UNJUDGED


def test_order_is_per_sender_and_precedence_in_each_inbox() -> None:
    """A lower seq after a higher one on the same link and precedence is out of order."""
    arrivals = [
        Arrival("LT", "BY", "routine", 5, "a"),
        Arrival("LT", "BY", "flash", 6, "b"),  # flash overtakes routine: allowed
        Arrival("LT", "BY", "routine", 4, "c"),  # behind seq 5: out of order
        Arrival("LT", "PL", "routine", 1, "d"),  # another sender: its own order
        Arrival("LV", "BY", "routine", 3, "e"),  # another inbox: its own order
    ]
    assert count_out_of_order(arrivals) == 1


@pytest.mark.slow
async def test_a_round_of_network_faults_loses_reorders_and_misreports_nothing(
    tmp_path: Path,
) -> None:
    """Every kind once: nothing lost, twice or out of order, and the blackhole is overdue."""
    result = await run_network(tmp_path, seed=11, rate=4.0, rounds=1, blackhole_s=7.0,
                               shape_s=2.0, warmup_s=1.0)
    assert result.net_faults == 5
    assert result.accepted > 0
    assert (result.lost, result.duplicates, result.out_of_order) == (0, 0, 0)
    assert result.blackhole_probes > 0
    assert result.blackhole_probes_overdue == result.blackhole_probes
    assert (result.deadline_missed_unreported, result.deadline_false_alarms) == (0, 0)
    assert result.never_reconnected == 0
    assert result.verify_ok
    assert result.checkpoints_ok
