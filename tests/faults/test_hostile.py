"""The hostile phase, reduced: every attack refused with its code, nothing forged accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from faults.hostile import run_hostile


@pytest.mark.slow
async def test_a_reduced_hostile_phase_refuses_everything(tmp_path: Path) -> None:
    """A short flood and a small connection flood: forged_accepted is 0, every case refused."""
    result = await run_hostile(tmp_path, flood_seconds=3.0, measure_rate=5.0, connections=20)
    assert result.forged_accepted == 0
    assert result.failures == ()
    assert result.rejected == result.cases
    assert result.codes.get("bad_signature", 0) >= 3
    assert result.codes.get("rate_limited", 0) > 0
