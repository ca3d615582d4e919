"""Fixed-bucket histograms behind the per-link figures: accuracy, determinism, saved state."""

from __future__ import annotations

import random

import msgpack
import pytest

from hotline.errors import UsageError
from hotline.figures.histogram import ExactSamples, Histogram, bucket_of, value_of
from hotline.figures.stats import nearest_rank


def _both(values: list[int], bits: int = 8) -> tuple[Histogram, ExactSamples]:
    histogram, exact = Histogram(bits), ExactSamples()
    for value in values:
        histogram.add(value)
        exact.add(value)
    return histogram, exact


@pytest.mark.parametrize("seed", range(5))
def test_every_percentile_is_within_a_percent_of_the_exact_one(seed: int) -> None:
    """Log-normal latencies and signed values: every percentile 1..100 within 1 %, count exact."""
    pick = random.Random(seed)
    values = [int(pick.lognormvariate(6, 2)) * pick.choice((1, 1, 1, -1)) for _ in range(5_000)]
    histogram, _ = _both(values)
    ordered = sorted(values)
    for percent in range(1, 101):
        exact = nearest_rank(ordered, percent)
        approximate = histogram.percentile(percent)
        assert approximate is not None
        assert abs(approximate - exact) <= abs(exact) / 256 + 1e-9, (percent, exact, approximate)
    assert histogram.count == len(values)
    assert histogram.percentile(100) == max(values)


def test_values_below_the_exact_range_are_kept_exactly() -> None:
    """Below 2^bits every value has its own bucket: percentiles are the samples themselves."""
    values = list(range(-255, 256)) * 3
    histogram, exact = _both(values)
    assert histogram.latency() == exact.latency()


def test_buckets_rise_with_values_and_read_back_inside_themselves() -> None:
    """Keys are monotonic in the value and each key's value lies in its own bucket."""
    values = sorted({0, 1, 255, 256, 257, 511, 512, 10_000, 2**31, 2**40 + 12_345}
                    | {random.Random(1).randrange(2**45) for _ in range(2_000)})
    signed = sorted([-v for v in values] + values)
    keys = [bucket_of(v) for v in signed]
    assert keys == sorted(keys)
    for key in set(keys):
        assert bucket_of(value_of(key)) == key


def test_finer_histograms_are_exact_further_out() -> None:
    """16 significant bits keep every value below 65,536 exact (clock offsets use this)."""
    histogram, exact = _both([10_004, 10_000, 180_000], bits=16)
    assert histogram.percentile(50) == exact.percentile(50) == 10_004


def test_state_round_trips_through_messagepack_and_keeps_adding_the_same() -> None:
    """A histogram saved and loaded mid-stream ends equal to one fed without a break."""
    pick = random.Random(7)
    values = [pick.randrange(-10**6, 10**7) for _ in range(2_000)]
    whole, _ = _both(values)
    first, _ = _both(values[:900])
    loaded = Histogram.from_state(msgpack.unpackb(msgpack.packb(first.state())))
    for value in values[900:]:
        loaded.add(value)
    assert loaded == whole
    assert loaded.latency() == whole.latency()


@pytest.mark.parametrize("state", [[], [8, 1, 0], [8, 2, 0, 5, 0, 1], [8, 1, 0, 5, 0, 1.5],
                                   [3, 0, 0, 0]])
def test_a_state_that_is_not_a_histogram_is_refused(state: list[int]) -> None:
    """A truncated, inconsistent, non-integer or out-of-range state raises UsageError."""
    with pytest.raises(UsageError):
        Histogram.from_state(state)


def test_scaling_and_shifting_move_every_statistic_alike() -> None:
    """Stored ms read as seconds, and a shift subtracted, in p50, p90, p99 and max."""
    histogram, exact = _both([1_500, 2_500, 100])
    latency = histogram.latency(scale=1000)
    assert (latency.p50, latency.max) == (1.5, 2.5)
    shifted = exact.latency(shift=100)
    assert (shifted.p50, shifted.p90, shifted.max) == (1_400, 2_400, 2_400)
    assert Histogram().latency().count == 0
