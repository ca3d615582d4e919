"""Medians over rounds, same-round ratios, and the Markdown table.

A ratio is taken within a round (hotline's figure over the peer's figure from
the same round, when both ran under the same conditions) and only then is the
median of those ratios reported; it is not the ratio of the medians.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from peers.workload import Row

__all__ = [
    "FLOOR_LINES",
    "GOALS",
    "METRICS",
    "Comparison",
    "Goal",
    "Measured",
    "Median",
    "Outcome",
    "Ratio",
    "floor_lines",
    "goals",
    "markdown",
    "measure",
    "medians",
    "ratios",
]

# Each figure: its Row field, its column heading, how to print it.
METRICS: Final = (
    ("msgs_per_s", "msgs/s", "{:,.0f}"),
    ("p50_ms", "p50 ms", "{:.2f}"),
    ("p99_ms", "p99 ms", "{:.2f}"),
    ("server_cpu_us_per_msg", "server CPU µs/msg", "{:,.0f}"),
    ("client_cpu_us_per_msg", "client CPU µs/msg", "{:,.0f}"),
)
REFERENCE: Final = "hotline"
SIGNATURES: Final = "sig_us_per_msg"
CPU: Final = "cpu_us_per_msg"  # server and client CPU per round trip together
# Against the signature ceiling only rates compare: its "latency" is one loop's time.
RATE_ONLY: Final = frozenset({"ceiling"})


@dataclass(frozen=True, slots=True)
class Comparison:
    """``numerator / denominator``, each a system's figure in ``mode``."""

    title: str
    mode: str
    numerator: tuple[str, str]
    denominator: tuple[str, str]


@dataclass(frozen=True, slots=True)
class Goal(Comparison):
    """A comparison with a target: ``numerator / denominator`` against ``bound``."""

    bound: float
    at_most: bool

    def holds(self, value: float) -> bool:
        return value <= self.bound if self.at_most else value >= self.bound

    @property
    def target(self) -> str:
        return f"{'≤' if self.at_most else '≥'} {self.bound:g}"


# The goals of issue 15 (docs/performance.md), each a ratio within one run.
GOALS: Final = (
    Goal("relay CPU per round trip / the relay's mandatory signature CPU", "reqack-w100",
         ("hotline", "server_cpu_us_per_msg"), ("hotline", SIGNATURES), 2.0, at_most=True),
    Goal("hotline round trips/s / the signature ceiling", "reqack-w100",
         ("hotline", "msgs_per_s"), ("ceiling", "msgs_per_s"), 0.6, at_most=False),
    Goal("hotline round trips/s / nats-ed25519", "reqack-w100",
         ("hotline", "msgs_per_s"), ("nats-ed25519", "msgs_per_s"), 0.6, at_most=False),
    Goal("hotline p50 / nats-ed25519 p50", "reqack-w1",
         ("hotline", "p50_ms"), ("nats-ed25519", "p50_ms"), 2.0, at_most=True),
    Goal("hotline-cluster round trips/s / hotline", "reqack-w100",
         ("hotline-cluster", "msgs_per_s"), ("hotline", "msgs_per_s"), 0.5, at_most=False),
    # Cross-checks that a loaded machine does not move: on a shared machine a system's rate
    # depends on how the cores were shared during its run, its CPU per round trip far less.
    # The rate two cores would give at that CPU, over the ceiling's / nats-ed25519's.
    Goal("cross-check: ceiling CPU / hotline CPU per round trip (relay and clients)",
         "reqack-w100", ("ceiling", CPU), ("hotline", CPU), 0.6, at_most=False),
    Goal("cross-check: nats-ed25519 CPU / hotline CPU per round trip (server and clients)",
         "reqack-w100", ("nats-ed25519", CPU), ("hotline", CPU), 0.6, at_most=False),
    Goal("cross-check: hotline CPU / hotline-cluster CPU per round trip (servers and clients)",
         "reqack-w100", ("hotline", CPU), ("hotline-cluster", CPU), 0.5, at_most=False),
)


# The goals proposed in their place (docs/performance.md): what hotline adds to the floor's
# work may cost at most 30%, and beside nats-ed25519 at a level the floor itself passes.
PROPOSED: Final = (
    Goal("hotline relay CPU per round trip / floor relay CPU", "reqack-w100",
         ("hotline", "server_cpu_us_per_msg"), ("floor", "server_cpu_us_per_msg"), 1.3,
         at_most=True),
    Goal("hotline round trips/s / floor round trips/s", "reqack-w100",
         ("hotline", "msgs_per_s"), ("floor", "msgs_per_s"), 0.8, at_most=False),
    Goal("hotline p50 / floor p50", "reqack-w1",
         ("hotline", "p50_ms"), ("floor", "p50_ms"), 1.3, at_most=True),
    Goal("hotline round trips/s / nats-ed25519", "reqack-w100",
         ("hotline", "msgs_per_s"), ("nats-ed25519", "msgs_per_s"), 0.5, at_most=False),
)


# Beside the goals, with no target: the floor, a relay in the same stack doing only the
# protocol's mandatory per-message work (bench/peers/floor_relay.py), against its signature
# work (hotline against the floor is judged in PROPOSED).
FLOOR_LINES: Final = (
    Comparison("floor relay CPU per round trip / the relay's mandatory signature CPU",
               "reqack-w100", ("floor", "server_cpu_us_per_msg"), ("floor", SIGNATURES)),
)


@dataclass(frozen=True, slots=True)
class Measured:
    """A comparison on one run: the ratio of the medians, and the median of same-round ratios."""

    comparison: Comparison
    of_medians: float
    of_rounds: float
    rounds: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """A goal judged on one run: on the medians, and the median of same-round ratios."""

    goal: Goal
    of_medians: float
    of_rounds: float
    rounds: int

    @property
    def met(self) -> bool:
        return self.goal.holds(self.of_medians)


@dataclass(frozen=True, slots=True)
class Median:
    system: str
    mode: str
    rounds: int
    values: dict[str, float]
    sig_us_per_msg: float | None = None


@dataclass(frozen=True, slots=True)
class Ratio:
    mode: str
    metric: str
    peer: str
    value: float
    rounds: int


def _value(row: Row, metric: str) -> float:
    if metric == CPU:
        return row.server_cpu_us_per_msg + row.client_cpu_us_per_msg
    value: float | None = getattr(row, metric)
    return float("nan") if value is None else float(value)


def _ordered(names: Iterable[str]) -> list[str]:
    """hotline first, then the peers in the order first seen."""
    seen = list(dict.fromkeys(names))
    return sorted(seen, key=lambda n: (not n.startswith(REFERENCE), seen.index(n)))


def medians(rows: Sequence[Row]) -> list[Median]:
    out = []
    for mode in dict.fromkeys(r.mode for r in rows):
        for system in _ordered(r.system for r in rows if r.mode == mode):
            group = [r for r in rows if r.mode == mode and r.system == system]
            signatures = [r.sig_us_per_msg for r in group if r.sig_us_per_msg is not None]
            out.append(Median(system, mode, len(group), {
                metric: statistics.median(_value(r, metric) for r in group)
                for metric, _, _ in METRICS
            }, statistics.median(signatures) if signatures else None))
    return out


def ratios(rows: Sequence[Row]) -> list[Ratio]:
    """hotline / peer per metric, mode and peer: the median of the per-round ratios."""
    out = []
    modes = list(dict.fromkeys(r.mode for r in rows))
    peers = [s for s in _ordered(r.system for r in rows) if not s.startswith(REFERENCE)]
    for mode in modes:
        mine = {r.round: r for r in rows if r.mode == mode and r.system == REFERENCE}
        for metric, _, _ in METRICS:
            for peer in peers:
                if peer in RATE_ONLY and metric != "msgs_per_s":
                    continue
                theirs = {r.round: r for r in rows if r.mode == mode and r.system == peer}
                per_round = [
                    _value(mine[n], metric) / _value(theirs[n], metric)
                    for n in sorted(mine.keys() & theirs.keys())
                    if _value(theirs[n], metric) > 0
                ]
                if per_round:
                    out.append(Ratio(mode, metric, peer, statistics.median(per_round),
                                     len(per_round)))
    return out


def measure(rows: Sequence[Row], comparison: Comparison) -> Measured | None:
    """The ratio of the medians and of same-round figures; None unless both systems ran."""
    def figures(side: tuple[str, str]) -> dict[int, float]:
        system, metric = side
        return {r.round: _value(r, metric) for r in rows
                if r.mode == comparison.mode and r.system == system
                and not math.isnan(_value(r, metric))}
    top, bottom = figures(comparison.numerator), figures(comparison.denominator)
    shared = sorted(top.keys() & bottom.keys())
    if not shared or not all(bottom[n] > 0 for n in shared):
        return None
    of_medians = statistics.median(top.values()) / statistics.median(bottom.values())
    of_rounds = statistics.median(top[n] / bottom[n] for n in shared)
    return Measured(comparison, of_medians, of_rounds, len(shared))


def goals(rows: Sequence[Row], wanted: Sequence[Goal] = GOALS) -> list[Outcome]:
    """Each goal whose systems both ran: the ratio of the medians and of same-round figures."""
    out = []
    for goal in wanted:
        found = measure(rows, goal)
        if found is not None:
            out.append(Outcome(goal, found.of_medians, found.of_rounds, found.rounds))
    return out


def floor_lines(rows: Sequence[Row]) -> list[Measured]:
    """The comparisons with the floor whose systems both ran."""
    return [m for m in (measure(rows, c) for c in FLOOR_LINES) if m is not None]


def _ratio_text(value: float) -> str:
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"


C = TypeVar("C", bound=Comparison)


def _both_ran(rows: Sequence[Row], wanted: Sequence[C]) -> list[C]:
    """The comparisons whose two systems ran in their mode."""
    ran = {(r.system, r.mode) for r in rows}
    return [c for c in wanted
            if (c.numerator[0], c.mode) in ran and (c.denominator[0], c.mode) in ran]


def _goal_table(heading: str, rows: Sequence[Row], wanted: Sequence[Goal]) -> list[str]:
    """A table of the goals whose systems both ran, judged on this run; "n/a" where a figure
    was 0 (a run too short for /proc's 10 ms CPU ticks, say), rather than a missing line."""
    listed = _both_ran(rows, wanted)
    if not listed:
        return []
    judged = {outcome.goal: outcome for outcome in goals(rows, listed)}
    lines = ["", f"{heading}, judged on the medians:", "",
             "| mode | goal | target | on the medians | median of same-round ratios | met |",
             "| --- | --- | ---: | ---: | ---: | --- |"]
    for goal in listed:
        outcome = judged.get(goal)
        figures = ("n/a | n/a | n/a" if outcome is None else
                   f"{outcome.of_medians:.2f} | {outcome.of_rounds:.2f} | "
                   f"{'yes' if outcome.met else 'no'}")
        lines.append(f"| {goal.mode} | {goal.title} | {goal.target} | {figures} |")
    return lines


def markdown(rows: Sequence[Row], machine: dict[str, str]) -> str:
    lines = ["# hotline beside its peers", ""]
    lines += [f"- {key}: {value}" for key, value in machine.items()]
    rounds = len({r.round for r in rows})
    lines += ["", f"Medians over {rounds} round(s):", ""]
    headings = [heading for _, heading, _ in METRICS] + ["relay signature CPU µs/msg"]
    lines.append("| system | mode | " + " | ".join(headings) + " |")
    lines.append("| --- | --- |" + " ---: |" * len(headings))
    for median in medians(rows):
        cells = [fmt.format(median.values[metric]) for metric, _, fmt in METRICS]
        sig = median.sig_us_per_msg
        cells.append("" if sig is None else f"{sig:,.0f}")
        lines.append(f"| {median.system} | {median.mode} | " + " | ".join(cells) + " |")
    found = ratios(rows)
    if found:
        peers = list(dict.fromkeys(r.peer for r in found))
        lines += ["", "hotline / peer, the median of the ratios taken within each round "
                      "(above 1 means hotline's figure is higher):", ""]
        lines.append("| mode | figure | " + " | ".join(f"hotline / {p}" for p in peers) + " |")
        lines.append("| --- | --- |" + " ---: |" * len(peers))
        names = {metric: heading for metric, heading, _ in METRICS}
        for mode in dict.fromkeys(r.mode for r in found):
            for metric in dict.fromkeys(r.metric for r in found if r.mode == mode):
                cells = []
                for peer in peers:
                    hit = [r for r in found if (r.mode, r.metric, r.peer) == (mode, metric, peer)]
                    cells.append(_ratio_text(hit[0].value) if hit else "n/a")
                lines.append(f"| {mode} | {names[metric]} | " + " | ".join(cells) + " |")
    lines += _goal_table("Goals (docs/performance.md)", rows, GOALS)
    lines += _goal_table("Goals proposed in their place (docs/performance.md)", rows, PROPOSED)
    measured = {line.comparison: line for line in floor_lines(rows)}
    beside = _both_ran(rows, FLOOR_LINES)  # "n/a" for a figure of 0, as in the goal tables
    if beside:
        lines += ["", "Beside the floor (bench/peers/floor_relay.py: a relay in the same stack "
                      "doing only the protocol's mandatory per-message work):", "",
                  "| mode | figure | on the medians | median of same-round ratios |",
                  "| --- | --- | ---: | ---: |"]
        for comparison in beside:
            line = measured.get(comparison)
            figures = ("n/a | n/a" if line is None
                       else f"{line.of_medians:.2f} | {line.of_rounds:.2f}")
            lines.append(f"| {comparison.mode} | {comparison.title} | {figures} |")
    return "\n".join(lines) + "\n"
