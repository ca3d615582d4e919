"""bench/peers/report.py: ratios are taken within a round, and only then is their median taken."""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ is a directory of scripts, not a package: its modules import each other by name.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from peers.report import markdown, ratios
from peers.workload import Row


def _row(system: str, round_: int, rate: float) -> Row:
    return Row(system=system, mode="reqack-w1", msgs_per_s=rate, p50_ms=1.0, p99_ms=2.0,
               server_cpu_us_per_msg=10.0, client_cpu_us_per_msg=5.0, messages=100,
               round=round_)


def test_the_ratio_is_the_median_of_same_round_ratios_not_the_ratio_of_medians() -> None:
    """Rounds 0-2 give hotline/nats 1/2, 3/1 and 1/4: the median 0.5, while medians give 1/2."""
    rows = [_row("hotline", 0, 1), _row("nats", 0, 2), _row("hotline", 1, 3), _row("nats", 1, 1),
            _row("hotline", 2, 1), _row("nats", 2, 4)]
    rate = next(r for r in ratios(rows) if r.metric == "msgs_per_s")
    assert (rate.peer, rate.rounds, rate.value) == ("nats", 3, 0.5)


def test_the_table_lists_hotline_first_and_names_each_peer_ratio() -> None:
    """hotline's row comes first whatever order the systems ran in."""
    table = markdown([_row("nats", 0, 2), _row("hotline", 0, 1)], {"machine": "test"})
    assert table.index("| hotline |") < table.index("| nats |")
    assert "hotline / nats" in table
