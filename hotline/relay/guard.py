"""Who may open a session with the relay: limits on authentication, sans-IO.

The relay's WebSocket is open to the network, so anyone can open sockets and
answer the challenge wrongly, or never. :class:`AuthGuard` keeps:

- one global count of sockets waiting to authenticate; beyond ``max_pending``
  a new socket is refused at once (HTTP 429 before the upgrade), so a flood of
  silent sockets holds at most ``max_pending`` places, each for at most the
  relay's auth timeout;
- the times of recent failed answers per **(address, claimed id)**; once
  ``max_failures`` fall inside ``window_ms`` that pair is *locked*: its failed
  answers are told ``rate_limited`` with the time to retry instead of why they
  failed (no oracle for the guesser), and are logged as such.

A valid signed answer to the challenge is **never** refused because of failures:
not its address's, not its claimed id's. Behind a proxy that gives every client
one address, a stranger's wrong answers cannot lock out an endpoint holding its
real key (Ed25519 answers cannot be guessed; the count names and meters the
guesser). A success does not wipe the pair's failures. Time is an argument;
nothing here reads a clock or touches a socket. Memory is bounded: a pair is
forgotten once its failures leave the window, and at most ``max_pairs`` pairs
are remembered (the one seen longest ago goes first).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Final

__all__ = ["AuthGuard", "GuardLimits", "Refusal", "Ticket"]

DEFAULT_MAX_PAIRS: Final = 10_000
MAX_CLAIMED_ID: Final = 64  # a claimed id is remembered by at most this many characters


@dataclass(frozen=True, slots=True)
class GuardLimits:
    max_failures: int = 5
    window_ms: int = 60_000
    max_pending: int = 256  # sockets waiting to authenticate, all addresses together
    max_pairs: int = DEFAULT_MAX_PAIRS


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a socket or a failed answer is refused now, and when to try again."""

    reason: str
    retry_after_ms: int


class AuthGuard:
    """A global pending count and per-(address, claimed id) failure windows."""

    def __init__(self, limits: GuardLimits | None = None) -> None:
        self.limits: Final = limits or GuardLimits()
        self.pending = 0
        self._failures: OrderedDict[tuple[str, str], deque[int]] = OrderedDict()

    def opening(self) -> Ticket | Refusal:
        """A socket asks to authenticate: a Ticket admits it (counted as pending until the
        ticket is settled), a Refusal turns it away."""
        if self.pending >= self.limits.max_pending:
            return Refusal(f"{self.pending} connections are already authenticating", 1000)
        self.pending += 1
        return Ticket(self)

    def _settle(self) -> None:
        self.pending = max(0, self.pending - 1)

    def _failed(self, address: str, claimed: str, now_ms: int) -> Refusal | None:
        key = (address, claimed[:MAX_CLAIMED_ID])
        times = self._failures.get(key)
        if times is None:
            times = self._failures[key] = deque()
            while len(self._failures) > self.limits.max_pairs:
                self._failures.popitem(last=False)
        else:
            self._failures.move_to_end(key)
        self._expire(times, now_ms)
        times.append(now_ms)
        while len(times) > self.limits.max_failures:
            times.popleft()
        if len(times) < self.limits.max_failures:
            return None
        return Refusal(
            f"{len(times)} failed authentications as {key[1]!r} from this address in "
            f"{self.limits.window_ms // 1000} s",
            max(1, times[0] + self.limits.window_ms - now_ms),
        )

    def _expire(self, times: deque[int], now_ms: int) -> None:
        horizon = now_ms - self.limits.window_ms
        while times and times[0] <= horizon:
            times.popleft()

    def failures(self, address: str, claimed: str, now_ms: int) -> int:
        """How many failures of ``(address, claimed)`` are inside the window at ``now_ms``."""
        key = (address, claimed[:MAX_CLAIMED_ID])
        times = self._failures.get(key)
        if times is None:
            return 0
        self._expire(times, now_ms)
        if not times:
            del self._failures[key]
        return len(times)


class Ticket:
    """One admitted socket's place among the pending; settled once, by the first call."""

    def __init__(self, guard: AuthGuard) -> None:
        self._guard = guard
        self.settled = False

    def _settle(self) -> bool:
        if self.settled:
            return False
        self.settled = True
        self._guard._settle()
        return True

    def succeeded(self) -> None:
        """The socket answered the challenge with a valid signature: it is always admitted."""
        self._settle()

    def gone(self) -> None:
        """The socket closed, or gave no answer in time, without a claim to count against."""
        self._settle()

    def failed(self, address: str, claimed: str, now_ms: int) -> Refusal | None:
        """The socket from ``address`` answered wrongly claiming ``claimed``; a Refusal when
        that pair is now locked (the answer is told to retry later)."""
        if not self._settle():
            return None
        return self._guard._failed(address, claimed, now_ms)
