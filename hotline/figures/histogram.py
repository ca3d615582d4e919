"""Fixed-bucket log-scale histograms of integer samples, and their exact counterpart.

The per-link figures keep one :class:`Histogram` per latency instead of every
sample, so the relay's memory does not grow with its log. Both the relay's live
view and ``hotline audit report`` fold samples into the same buckets, so both
give the same figures; ``hotline audit report --exact`` uses
:class:`ExactSamples` (every sample kept, exact nearest rank) instead.

Buckets (integer arithmetic only, so every platform puts a value in the same
bucket), for ``b`` significant bits (:data:`SIGNIFICANT_BITS`, 8, unless a
histogram is made with more): a value ``v`` with ``|v| < 2^b`` has a bucket of
its own; a larger one goes to the bucket of the top ``b`` bits of ``|v|``,
``[m·2^e, (m+1)·2^e)`` with ``2^(b-1) ≤ m < 2^b``, which is ``2^(b-1)``
buckets per doubling. A bucket reads as its midpoint ``m·2^e + 2^(e-1)``,
clamped to the smallest and largest sample seen, so a percentile is off by at
most ``2^(e-1) / (2^(b-1)·2^e) = 2^-b`` of the true value (1/256 = 0.4 % for
8 bits, within the 1 % the figures promise); values below ``2^b`` are exact,
and so are ``count`` and ``max``. Percentiles are by nearest rank over the
buckets, as :mod:`hotline.figures.stats` defines it for samples.

Negative values (end-to-end times across skewed clocks, lead times after the
crossing) use the mirror image of the same buckets.

Invariants:

- pure: no I/O, no clock, no floating point in bucketing;
- ``state()`` is a plain, JSON/MessagePack-ready value and
  ``from_state(state())`` is equal to the original;
- memory is bounded by the range of values, not their number: at most
  ``2^(b-1)`` buckets per doubling (about 4,300 for every value below 2^40 at
  8 bits), and never more than the number of distinct values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, Protocol

from hotline.errors import UsageError
from hotline.figures.stats import PERCENTS, Latency, Number, nearest_rank, plain

__all__ = ["SIGNIFICANT_BITS", "ExactSamples", "Histogram", "Samples", "bucket_of", "value_of"]

SIGNIFICANT_BITS: Final = 8
_MAX_BITS: Final = 32


def bucket_of(value: int, bits: int = SIGNIFICANT_BITS) -> int:
    """The bucket key of ``value`` at ``bits`` significant bits; keys rise with values."""
    if value < 0:
        return -bucket_of(-value, bits)
    if value < 1 << bits:
        return value
    shift = value.bit_length() - bits
    return (shift << (bits - 1)) + (value >> shift)


def value_of(key: int, bits: int = SIGNIFICANT_BITS) -> int:
    """The value a bucket reads as: itself below ``2^bits``, else its midpoint."""
    if key < 0:
        return -value_of(-key, bits)
    if key < 1 << bits:
        return key
    half = 1 << (bits - 1)
    shift, mantissa = divmod(key, half)
    shift -= 1
    return ((mantissa + half) << shift) + (1 << (shift - 1))


class Samples(Protocol):
    """What the figures need of a set of integer samples."""

    def add(self, value: int) -> None: ...

    @property
    def count(self) -> int: ...

    def percentile(self, percent: int) -> int | None: ...

    def latency(self, scale: int = 1, shift: Number = 0) -> Latency: ...

    def state(self) -> list[int]: ...


class Histogram:
    """Counts per bucket, with the exact count, smallest and largest value."""

    __slots__ = ("_bits", "_buckets", "_count", "_max", "_min")

    def __init__(self, bits: int = SIGNIFICANT_BITS) -> None:
        if not SIGNIFICANT_BITS <= bits <= _MAX_BITS:
            raise UsageError(
                f"a histogram keeps {SIGNIFICANT_BITS} to {_MAX_BITS} significant bits, not {bits}"
            )
        self._bits = bits
        self._buckets: dict[int, int] = {}
        self._count = 0
        self._min = 0
        self._max = 0

    def add(self, value: int) -> None:
        key = bucket_of(value, self._bits)
        self._buckets[key] = self._buckets.get(key, 0) + 1
        if self._count == 0:
            self._min = self._max = value
        elif value < self._min:
            self._min = value
        elif value > self._max:
            self._max = value
        self._count += 1

    @property
    def count(self) -> int:
        return self._count

    def percentile(self, percent: int) -> int | None:
        """Nearest rank over the buckets: the bucket holding rank ``ceil(percent·n/100)``."""
        if not 0 < percent <= 100:
            raise UsageError(f"a percentile is between 1 and 100, not {percent}")
        if not self._count:
            return None
        if percent == 100:
            return self._max
        rank = -(-percent * self._count // 100)
        seen = 0
        for key in sorted(self._buckets):
            seen += self._buckets[key]
            if seen >= rank:
                return min(self._max, max(self._min, value_of(key, self._bits)))
        return self._max  # unreachable: the counts add up to the count

    def latency(self, scale: int = 1, shift: Number = 0) -> Latency:
        """p50, p90, p99, max and count of ``(sample - shift·scale) / scale``.

        ``scale`` turns stored units into reported ones (1000 for ms stored, s
        reported); ``shift`` moves every sample by the same amount, which does
        not change their order, so it is applied to the order statistics.
        """
        if not self._count:
            return Latency(None, None, None, None, 0)
        values = [self.percentile(p) for p in PERCENTS]
        p50, p90, p99 = (_scaled(v, scale, shift) for v in values if v is not None)
        return Latency(p50, p90, p99, _scaled(self._max, scale, shift), self._count)

    def state(self) -> list[int]:
        """``[bits, count, min, max, key, n, key, n, ...]``, keys ascending."""
        out = [self._bits, self._count, self._min, self._max]
        for key in sorted(self._buckets):
            out += (key, self._buckets[key])
        return out

    @classmethod
    def from_state(cls, state: Sequence[int]) -> Histogram:
        """The histogram ``state()`` described; UsageError if it is not one."""
        if len(state) < 4 or len(state) % 2 or not all(type(v) is int for v in state):
            raise UsageError(
                "a histogram state is [bits, count, min, max, key, n, ...] of integers"
            )
        histogram = cls(state[0])
        histogram._count, histogram._min, histogram._max = state[1], state[2], state[3]
        pairs = state[4:]
        histogram._buckets = dict(zip(pairs[0::2], pairs[1::2], strict=True))
        if sum(histogram._buckets.values()) != histogram._count or any(
            n <= 0 for n in histogram._buckets.values()
        ):
            raise UsageError("a histogram state's bucket counts do not add up to its count")
        return histogram

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Histogram) and self.state() == other.state()

    __hash__ = None  # type: ignore[assignment]


class ExactSamples:
    """Every sample kept: exact nearest-rank percentiles (``audit report --exact``)."""

    __slots__ = ("_values",)

    def __init__(self, values: Iterable[int] = ()) -> None:
        self._values = list(values)

    def add(self, value: int) -> None:
        self._values.append(value)

    @property
    def count(self) -> int:
        return len(self._values)

    def percentile(self, percent: int) -> int | None:
        if not self._values:
            return None
        return int(nearest_rank(sorted(self._values), percent))

    def latency(self, scale: int = 1, shift: Number = 0) -> Latency:
        if not self._values:
            return Latency(None, None, None, None, 0)
        ordered = sorted(self._values)
        p50, p90, p99 = (_scaled(int(nearest_rank(ordered, p)), scale, shift) for p in PERCENTS)
        return Latency(p50, p90, p99, _scaled(ordered[-1], scale, shift), len(ordered))

    def state(self) -> list[int]:
        return list(self._values)


def _scaled(value: int, scale: int, shift: Number) -> Number:
    if scale == 1:
        return plain(value - shift)
    return plain((value - shift * scale) / scale)
