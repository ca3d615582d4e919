"""bench/peers/report.py: ratios are taken within a round, and only then is their median taken."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

# bench/ is a directory of scripts, not a package: its modules import each other by name.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from peers.report import PROPOSED, floor_lines, goals, markdown, ratios
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


def _w100(system: str, round_: int, rate: float, server_us: float = 10.0,
          sig_us: float | None = None) -> Row:
    return Row(system=system, mode="reqack-w100", msgs_per_s=rate, p50_ms=1.0, p99_ms=2.0,
               server_cpu_us_per_msg=server_us, client_cpu_us_per_msg=5.0, messages=100,
               round=round_, sig_us_per_msg=sig_us)


def test_goals_are_judged_on_the_ratio_of_the_medians() -> None:
    """hotline at 300, 500, 700 against a ceiling of 1000 each round: 0.5 on the medians, not met;
    relay CPU 150 µs against 100 µs of signatures: 1.5, met."""
    rows = [row for n, rate in enumerate((300, 500, 700))
            for row in (_w100("hotline", n, rate, server_us=150, sig_us=100),
                        _w100("ceiling", n, 1000))]
    found = {o.goal.denominator[0] + "/" + o.goal.denominator[1]: o for o in goals(rows)}
    ceiling = found["ceiling/msgs_per_s"]
    assert (ceiling.of_medians, ceiling.rounds, ceiling.met) == (0.5, 3, False)
    signatures = found["hotline/sig_us_per_msg"]
    assert (signatures.of_medians, signatures.met) == (1.5, True)
    # Goals whose systems did not run (nats-ed25519, the cluster) are left out, not guessed.
    assert set(found) == {"ceiling/msgs_per_s", "hotline/sig_us_per_msg", "hotline/cpu_us_per_msg"}


def test_against_the_ceiling_only_the_rate_is_compared() -> None:
    """The ceiling's latency is one loop's time, so hotline / ceiling has a rate row only."""
    rows = [_w100("hotline", 0, 500, sig_us=100), _w100("ceiling", 0, 1000)]
    assert [(r.peer, r.metric) for r in ratios(rows)] == [("ceiling", "msgs_per_s")]
    table = markdown(rows, {"machine": "test"})
    assert "| reqack-w100 | hotline round trips/s / the signature ceiling | ≥ 0.6 | 0.50 |" in table


def test_a_row_carries_its_signature_figure_through_json() -> None:
    """sig_us_per_msg survives to_json/from_json, and rows without it stay without it."""
    with_sig = _w100("hotline", 0, 500, sig_us=123.4)
    without = _w100("nats", 0, 500)
    assert Row.from_json(with_sig.to_json()) == with_sig
    assert "sig_us_per_msg" not in without.to_json()
    assert Row.from_json(without.to_json()) == without


def test_the_cpu_cross_check_adds_server_and_client_cpu() -> None:
    """Ceiling 100+100 µs against hotline 600+200 µs per round trip: 0.25, whatever the rates."""
    rows = [_w100("hotline", 0, 500, server_us=600, sig_us=100),
            replace(_w100("ceiling", 0, 1000, server_us=100), client_cpu_us_per_msg=100)]
    rows[0] = replace(rows[0], client_cpu_us_per_msg=200)
    check = next(o for o in goals(rows) if o.goal.numerator == ("ceiling", "cpu_us_per_msg"))
    assert (check.of_medians, check.met) == (0.25, False)


def test_hotline_is_judged_against_the_floor_relay_in_the_same_run() -> None:
    """floor 200 µs against 100 µs of signatures: 2.0, beside the goals; hotline 700 µs against
    the floor's 200 µs: 3.5, and hotline's w1 p50 3 ms against the floor's 1.5 ms: 2.0, judged
    once, as proposed goals. The issue's goal lines stay as they were."""
    rows = [_w100("hotline", 0, 500, server_us=700, sig_us=100),
            _w100("floor", 0, 2000, server_us=200, sig_us=100),
            replace(_row("hotline", 0, 300), p50_ms=3.0),
            replace(_row("floor", 0, 600), p50_ms=1.5)]
    found = {line.comparison.title: (line.comparison.mode, line.of_medians, line.rounds)
             for line in floor_lines(rows)}
    assert found == {
        "floor relay CPU per round trip / the relay's mandatory signature CPU":
            ("reqack-w100", 2.0, 1),
    }
    table = markdown(rows, {"machine": "test"})
    assert ("| reqack-w100 | floor relay CPU per round trip / the relay's mandatory signature "
            "CPU | 2.00 | 2.00 |") in table
    assert table.count("hotline relay CPU per round trip / floor relay CPU") == 1
    assert ("| reqack-w100 | relay CPU per round trip / the relay's mandatory signature CPU "
            "| ≤ 2 | 7.00 | 7.00 | no |") in table
    # The floor is a peer in the ratio table too; it is judged only in the proposed goals.
    assert "hotline / floor" in table
    assert all(o.goal.numerator[0] != "floor" and o.goal.denominator[0] != "floor"
               for o in goals(rows))
    assert ("| reqack-w100 | hotline relay CPU per round trip / floor relay CPU | ≤ 1.3 "
            "| 3.50 | 3.50 | no |") in table
    assert "| reqack-w1 | hotline p50 / floor p50 | ≤ 1.3 | 2.00 | 2.00 | no |" in table
    assert ("| reqack-w100 | hotline round trips/s / floor round trips/s | ≥ 0.8 "
            "| 0.25 | 0.25 | no |") in table


def test_the_proposed_goals_are_judged_where_their_systems_ran() -> None:
    """hotline at 450 µs against the floor's 400 and 900 against 1,000 round trips/s: both
    met; 900 against nats-ed25519's 2,000: 0.45, not met; the w1 goal, with no w1 run, absent."""
    rows = [_w100("hotline", 0, 900, server_us=450, sig_us=100),
            _w100("floor", 0, 1000, server_us=400, sig_us=100),
            _w100("nats-ed25519", 0, 2000)]
    judged = {o.goal.title: (o.of_medians, o.met) for o in goals(rows, PROPOSED)}
    assert judged == {
        "hotline relay CPU per round trip / floor relay CPU": (1.125, True),
        "hotline round trips/s / floor round trips/s": (0.9, True),
        "hotline round trips/s / nats-ed25519": (0.45, False),
    }
    table = markdown(rows, {"machine": "test"})
    assert "Goals proposed in their place (docs/performance.md), judged on the medians:" in table
    assert "| reqack-w100 | hotline round trips/s / nats-ed25519 | ≥ 0.5 | 0.45 | 0.45 | no |" \
        in table


def test_a_floor_figure_too_small_to_measure_shows_as_not_available() -> None:
    """A run so short that the floor's CPU read 0: its lines are listed with n/a, not left out
    and not divided by zero."""
    rows = [_w100("hotline", 0, 500, server_us=700, sig_us=100),
            _w100("floor", 0, 2000, server_us=0, sig_us=100)]
    table = markdown(rows, {"machine": "test"})
    assert ("| reqack-w100 | hotline relay CPU per round trip / floor relay CPU | ≤ 1.3 "
            "| n/a | n/a | n/a |") in table
    assert ("| reqack-w100 | floor relay CPU per round trip / the relay's mandatory signature "
            "CPU | 0.00 | 0.00 |") in table


def test_without_a_floor_run_there_are_no_floor_lines() -> None:
    """Rows without the floor give no floor section, rather than a guess."""
    rows = [_w100("hotline", 0, 500, server_us=700, sig_us=100), _w100("ceiling", 0, 1000)]
    assert floor_lines(rows) == []
    assert "Beside the floor" not in markdown(rows, {"machine": "test"})
