"""Token buckets keyed by party: a burst, a refill rate, and the wait named when empty."""

from __future__ import annotations

import pytest

from hotline.protocol.budget import TokenBucket

T0 = 1_764_000_000_000


def test_a_bucket_gives_its_burst_then_names_the_wait() -> None:
    """Three tokens at once, then the milliseconds until the next; other keys are apart."""
    bucket = TokenBucket(3, 1 / 100)  # one token each 100 ms
    assert [bucket.take("BY", T0) for _ in range(3)] == [0, 0, 0]
    assert bucket.take("BY", T0) == 100
    assert bucket.take("BY", T0 + 40) == 60  # nothing was taken by the refusal
    assert bucket.take("LT", T0) == 0
    assert bucket.take("BY", T0 + 100) == 0


def test_a_bucket_never_holds_more_than_its_burst_and_ignores_a_clock_going_back() -> None:
    """A long pause refills to the burst only; an earlier time adds nothing."""
    bucket = TokenBucket(2, 1 / 100)
    assert bucket.take("BY", T0) == 0
    assert bucket.take("BY", T0 + 3_600_000) == 0
    assert bucket.take("BY", T0 + 3_600_000) == 0
    assert bucket.take("BY", T0 + 3_600_000) > 0
    assert bucket.take("BY", T0) > 0


def test_a_token_given_back_can_be_taken_again_but_never_beyond_the_burst() -> None:
    """give_back returns what take spent; a full bucket, or a key never seen, stays full."""
    bucket = TokenBucket(2, 1 / 100)
    assert [bucket.take("BY", T0) for _ in range(2)] == [0, 0]
    assert bucket.take("BY", T0) > 0
    bucket.give_back("BY")
    assert bucket.take("BY", T0) == 0
    assert bucket.take("BY", T0) > 0
    for _ in range(5):
        bucket.give_back("BY")
    assert [bucket.take("BY", T0) for _ in range(3)] == [0, 0, 100]
    bucket.give_back("LT")
    assert [bucket.take("LT", T0) for _ in range(3)] == [0, 0, 100]


@pytest.mark.parametrize(("burst", "per_ms"), [(0.5, 1.0), (2, 0.0), (2, -1.0)])
def test_a_bucket_needs_a_burst_and_a_rate(burst: float, per_ms: float) -> None:
    """A burst below one or a rate that never refills is a usage error."""
    with pytest.raises(ValueError, match="burst of at least 1"):
        TokenBucket(burst, per_ms)
