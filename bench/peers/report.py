"""Medians over rounds, same-round ratios, and the Markdown table.

A ratio is taken within a round (hotline's figure over the peer's figure from
the same round, when both ran under the same conditions) and only then is the
median of those ratios reported; it is not the ratio of the medians.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from peers.workload import Row

__all__ = ["METRICS", "Median", "Ratio", "markdown", "medians", "ratios"]

# Each figure: its Row field, its column heading, how to print it.
METRICS: Final = (
    ("msgs_per_s", "msgs/s", "{:,.0f}"),
    ("p50_ms", "p50 ms", "{:.2f}"),
    ("p99_ms", "p99 ms", "{:.2f}"),
    ("server_cpu_us_per_msg", "server CPU µs/msg", "{:,.0f}"),
    ("client_cpu_us_per_msg", "client CPU µs/msg", "{:,.0f}"),
)
REFERENCE: Final = "hotline"


@dataclass(frozen=True, slots=True)
class Median:
    system: str
    mode: str
    rounds: int
    values: dict[str, float]


@dataclass(frozen=True, slots=True)
class Ratio:
    mode: str
    metric: str
    peer: str
    value: float
    rounds: int


def _value(row: Row, metric: str) -> float:
    value: float = getattr(row, metric)
    return float(value)


def _ordered(names: Iterable[str]) -> list[str]:
    """hotline first, then the peers in the order first seen."""
    seen = list(dict.fromkeys(names))
    return sorted(seen, key=lambda n: (not n.startswith(REFERENCE), seen.index(n)))


def medians(rows: Sequence[Row]) -> list[Median]:
    out = []
    for mode in dict.fromkeys(r.mode for r in rows):
        for system in _ordered(r.system for r in rows if r.mode == mode):
            group = [r for r in rows if r.mode == mode and r.system == system]
            out.append(Median(system, mode, len(group), {
                metric: statistics.median(_value(r, metric) for r in group)
                for metric, _, _ in METRICS
            }))
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


def _ratio_text(value: float) -> str:
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"


def markdown(rows: Sequence[Row], machine: dict[str, str]) -> str:
    lines = ["# hotline beside its peers", ""]
    lines += [f"- {key}: {value}" for key, value in machine.items()]
    rounds = len({r.round for r in rows})
    lines += ["", f"Medians over {rounds} round(s):", ""]
    headings = [heading for _, heading, _ in METRICS]
    lines.append("| system | mode | " + " | ".join(headings) + " |")
    lines.append("| --- | --- |" + " ---: |" * len(headings))
    for median in medians(rows):
        cells = [fmt.format(median.values[metric]) for metric, _, fmt in METRICS]
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
    return "\n".join(lines) + "\n"
