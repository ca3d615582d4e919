"""Token buckets per sensor feed, sans-IO: the time is an argument.

A feed with ``rate_per_minute`` r has a bucket that refills at r tokens a
minute and holds at most max(1, r ÷ 6) tokens (ten seconds' worth), full at
first. Every alert the feed gets sent takes one token; an alert the endpoint
then refuses gives it back (:meth:`FeedLimits.refund`), so only what reaches
the network counts. An empty bucket answers how long until the next token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["FeedLimits", "TokenBucket"]

_BURST_MINUTE_SHARE: Final = 6  # a bucket holds a sixth of a minute's rate


@dataclass(slots=True)
class TokenBucket:
    """``rate_per_minute`` refill, ``capacity`` tokens at most."""

    rate_per_minute: float
    capacity: float
    tokens: float
    at_ms: int

    @classmethod
    def full(cls, rate_per_minute: float, now_ms: int) -> TokenBucket:
        capacity = max(1.0, rate_per_minute / _BURST_MINUTE_SHARE)
        return cls(rate_per_minute, capacity, capacity, now_ms)

    def _refill(self, now_ms: int) -> None:
        elapsed = max(0, now_ms - self.at_ms)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate_per_minute / 60_000)
        self.at_ms = max(self.at_ms, now_ms)

    def take(self, now_ms: int) -> int:
        """Take a token: 0, or (none taken) the milliseconds until one is there."""
        self._refill(now_ms)
        if self.tokens >= 1:
            self.tokens -= 1
            return 0
        return int((1 - self.tokens) * 60_000 / self.rate_per_minute) + 1

    def refund(self) -> None:
        self.tokens = min(self.capacity, self.tokens + 1)


class FeedLimits:
    """One bucket per feed name; a feed whose rate changes gets a new, full bucket."""

    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, feed: str, rate_per_minute: float, now_ms: int) -> int:
        """0 when the feed may send now, else the milliseconds to wait."""
        bucket = self._buckets.get(feed)
        if bucket is None or bucket.rate_per_minute != rate_per_minute:
            bucket = self._buckets[feed] = TokenBucket.full(rate_per_minute, now_ms)
        return bucket.take(now_ms)

    def refund(self, feed: str) -> None:
        bucket = self._buckets.get(feed)
        if bucket is not None:
            bucket.refund()
