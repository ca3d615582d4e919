"""The crash harness end to end with a handful of kills: nothing lost, nothing twice."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(
    r"^faults: kills=(\d+) relay_kills=(\d+) endpoint_kills=(\d+) accepted=(\d+) lost=(\d+) "
    r"duplicates=(\d+) forged_accepted=(\d+) verify=(\w+) seconds=(\d+)$"
)


@pytest.mark.slow
def test_a_few_kills_lose_and_duplicate_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "faults.run", "--phases", "crash", "--relay-kills", "3",
         "--endpoint-kills", "1",
         "--seed", "7", "--min-gap", "0.3", "--max-gap", "1.0"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    match = LINE.match(last)
    assert match is not None, f"no summary line; stderr:\n{done.stderr}"
    kills, relay_kills, endpoint_kills, accepted, lost, duplicates, forged, verify, _ = (
        match.groups()
    )
    assert (kills, relay_kills, endpoint_kills) == ("4", "3", "1")
    assert int(accepted) > 0
    assert (lost, duplicates, forged, verify) == ("0", "0", "0", "ok"), done.stderr
    assert done.returncode == 0, done.stderr
