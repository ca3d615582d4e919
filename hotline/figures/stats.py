"""Order statistics for latency figures: nearest-rank percentiles and the median.

Invariants:

- a percentile is always one of the samples (nearest rank: the value at rank
  ``ceil(q·n)`` of the sorted samples, ranks counted from 1), so integer
  milliseconds stay integers;
- ``q`` is given in whole percent and the rank is computed in integers, so no
  floating-point rounding can move it;
- an empty sample list gives ``None`` for every order statistic and count 0.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["PERCENTS", "Latency", "Number", "median", "nearest_rank", "plain"]

Number = int | float
PERCENTS: Final = (50, 90, 99)


def plain(value: Number) -> Number:
    """``value`` as an int when it is a whole number (``40.0`` → ``40``), else as is."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def nearest_rank(ordered: Sequence[Number], percent: int) -> Number:
    """The ``percent``-th percentile of non-empty, ascending ``ordered`` by nearest rank."""
    if not ordered:
        raise ValueError("a percentile of no samples is undefined")
    if not 0 < percent <= 100:
        raise ValueError(f"a percentile is between 1 and 100, not {percent}")
    rank = -(-percent * len(ordered) // 100)  # ceil(percent · n / 100), in integers
    return ordered[rank - 1]


def median(samples: Iterable[Number]) -> Number | None:
    """The median (mean of the two middle values for an even count), or None for none."""
    values = list(samples)
    if not values:
        return None
    return plain(statistics.median(values))


@dataclass(frozen=True, slots=True)
class Latency:
    """p50, p90, p99 and max of a list of samples, and how many there were."""

    p50: Number | None
    p90: Number | None
    p99: Number | None
    max: Number | None
    count: int

    @classmethod
    def of(cls, samples: Iterable[Number]) -> Latency:
        ordered = sorted(samples)
        if not ordered:
            return cls(None, None, None, None, 0)
        p50, p90, p99 = (nearest_rank(ordered, p) for p in PERCENTS)
        return cls(p50, p90, p99, ordered[-1], len(ordered))

    def as_dict(self) -> dict[str, Number | None]:
        return {"p50": self.p50, "p90": self.p90, "p99": self.p99, "max": self.max,
                "count": self.count}
