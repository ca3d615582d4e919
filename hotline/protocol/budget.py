"""Token buckets keyed by party: how much of something each party may do, sans-IO.

A bucket holds up to ``burst`` tokens and gains ``per_ms`` tokens each
millisecond; taking one when fewer than one is left is refused with the
milliseconds until one will be there. Time is an argument (never read here);
a clock that goes back adds nothing and takes nothing away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

__all__ = ["TokenBucket"]


@dataclass(slots=True)
class _Level:
    tokens: float
    at_ms: int


class TokenBucket:
    """One bucket per key, all with the same ``burst`` and refill rate ``per_ms``."""

    def __init__(self, burst: float, per_ms: float) -> None:
        if burst < 1 or per_ms <= 0:
            raise ValueError("a bucket needs a burst of at least 1 and a positive rate")
        self.burst: Final = burst
        self.per_ms: Final = per_ms
        self._levels: dict[str, _Level] = {}

    def _level(self, key: str, now_ms: int) -> _Level:
        level = self._levels.get(key)
        if level is None:
            level = self._levels[key] = _Level(self.burst, now_ms)
        elapsed = max(0, now_ms - level.at_ms)
        level.tokens = min(self.burst, level.tokens + elapsed * self.per_ms)
        level.at_ms = max(level.at_ms, now_ms)
        return level

    def give_back(self, key: str) -> None:
        """Return one token taken for ``key`` (what it paid for did not happen), up to
        ``burst``; a key never taken from has a full bucket already."""
        level = self._levels.get(key)
        if level is not None:
            level.tokens = min(self.burst, level.tokens + 1)

    def take(self, key: str, now_ms: int) -> int:
        """Take a token for ``key``: 0 if taken, else the ms until one is there (none taken)."""
        level = self._level(key, now_ms)
        if level.tokens < 1:
            return max(1, math.ceil((1 - level.tokens) / self.per_ms))
        level.tokens -= 1
        return 0
