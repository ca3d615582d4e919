"""Token buckets per feed: refill at the feed's rate, a burst of ten seconds' worth."""

from __future__ import annotations

from hotline.endpoint.ratelimit import FeedLimits, TokenBucket


def test_a_full_bucket_allows_a_burst_of_a_sixth_of_the_rate() -> None:
    """At 60 a minute, ten alerts pass at once and the eleventh waits about a second."""
    bucket = TokenBucket.full(60, 0)
    assert [bucket.take(0) for _ in range(10)] == [0] * 10
    wait = bucket.take(0)
    assert 1000 <= wait <= 1001


def test_the_bucket_refills_at_the_rate() -> None:
    """After the wait it names, a token is there again; never more than the capacity."""
    bucket = TokenBucket.full(6, 0)
    assert bucket.take(0) == 0
    wait = bucket.take(0)
    assert wait > 0
    assert bucket.take(wait) == 0
    assert bucket.take(10**9) == 0
    assert bucket.tokens == bucket.capacity - 1


def test_a_slow_feed_still_gets_one_alert() -> None:
    """Below six a minute the bucket holds one token; the next comes after 60/rate seconds."""
    bucket = TokenBucket.full(1, 0)
    assert bucket.take(0) == 0
    assert 59_999 <= bucket.take(0) <= 60_001


def test_a_refund_gives_the_token_back() -> None:
    """A refused alert's token is returned to its feed's bucket."""
    limits = FeedLimits()
    assert limits.take("radar", 1, 0) == 0
    assert limits.take("radar", 1, 0) > 0
    limits.refund("radar")
    assert limits.take("radar", 1, 0) == 0


def test_feeds_have_separate_buckets_and_a_new_rate_a_new_bucket() -> None:
    """One feed's burst does not limit another; changing a feed's rate refills its bucket."""
    limits = FeedLimits()
    assert limits.take("a", 1, 0) == 0
    assert limits.take("b", 1, 0) == 0
    assert limits.take("a", 1, 0) > 0
    assert limits.take("a", 2, 0) == 0


def test_time_going_back_does_not_add_tokens() -> None:
    """A clock stepping backwards neither refills nor breaks the bucket."""
    bucket = TokenBucket.full(1, 1_000_000)
    assert bucket.take(1_000_000) == 0
    assert bucket.take(0) > 0
