"""bench/backlog.py: the core really builds the backlog it times."""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ is a directory of scripts, not a package: its modules import each other by name.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from backlog import measure


def test_every_message_timed_is_owed_and_each_figure_is_positive() -> None:
    """The run ends with every message owed to the silent recipient (asserted inside), and
    gives a positive cost per message and per tick."""
    figures = measure(40)
    assert figures["owed"] == 40
    assert all(figures[key] > 0 for key in (
        "us_per_message_first_tenth", "us_per_message_rest", "us_per_tick_nothing_due"))
