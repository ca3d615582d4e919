"""Who may open a session with the relay: per-address limits on authentication, sans-IO.

The relay's WebSocket is open to the network, so an address can try to
authenticate as often as it likes, or open sockets and never answer the
challenge. :class:`AuthGuard` keeps, per remote address:

- the times of its recent failed authentications (a refused answer, or no
  answer within the relay's auth timeout); once ``max_failures`` fall inside
  ``window_ms``, the address is refused until the oldest of them leaves the
  window;
- how many of its sockets are waiting to authenticate now; beyond
  ``max_pending`` a new one is refused at once.

A refused address is told when to retry (``retry_after_ms``). A successful
authentication does not wipe the failures: a party that holds one valid key
cannot use it to keep guessing others. Time is an argument; nothing here reads
a clock or touches a socket. Memory is bounded: an address is forgotten once it
has no failures in the window and no pending socket, and at most
``max_addresses`` addresses are remembered (the one seen longest ago goes first).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Final

__all__ = ["AuthGuard", "GuardLimits", "Refusal"]

DEFAULT_MAX_ADDRESSES: Final = 10_000


@dataclass(frozen=True, slots=True)
class GuardLimits:
    max_failures: int = 5
    window_ms: int = 60_000
    max_pending: int = 16
    max_addresses: int = DEFAULT_MAX_ADDRESSES


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an address may not open a session now, and when it may try again."""

    reason: str
    retry_after_ms: int


@dataclass(slots=True)
class _Address:
    failures: deque[int] = field(default_factory=deque)
    pending: int = 0


class AuthGuard:
    """Per-address failure windows and pending-socket counts (see the module docstring)."""

    def __init__(self, limits: GuardLimits | None = None) -> None:
        self.limits: Final = limits or GuardLimits()
        self._addresses: OrderedDict[str, _Address] = OrderedDict()

    def _get(self, address: str) -> _Address:
        state = self._addresses.get(address)
        if state is None:
            state = self._addresses[address] = _Address()
            while len(self._addresses) > self.limits.max_addresses:
                self._addresses.popitem(last=False)
        else:
            self._addresses.move_to_end(address)
        return state

    def _expire(self, state: _Address, now_ms: int) -> None:
        horizon = now_ms - self.limits.window_ms
        while state.failures and state.failures[0] <= horizon:
            state.failures.popleft()

    def _forget_if_idle(self, address: str, state: _Address) -> None:
        if not state.failures and state.pending == 0:
            self._addresses.pop(address, None)

    def opening(self, address: str, now_ms: int) -> Refusal | None:
        """A socket from ``address`` asks to authenticate: None admits it (and counts it)."""
        state = self._get(address)
        self._expire(state, now_ms)
        if len(state.failures) >= self.limits.max_failures:
            retry = state.failures[0] + self.limits.window_ms - now_ms
            return Refusal(
                f"{len(state.failures)} failed authentications from this address in "
                f"{self.limits.window_ms // 1000} s",
                max(1, retry),
            )
        if state.pending >= self.limits.max_pending:
            return Refusal(
                f"{state.pending} connections from this address are already authenticating",
                1000,
            )
        state.pending += 1
        return None

    def succeeded(self, address: str) -> None:
        """An admitted socket authenticated."""
        state = self._get(address)
        state.pending = max(0, state.pending - 1)
        self._forget_if_idle(address, state)

    def failed(self, address: str, now_ms: int) -> None:
        """An admitted socket failed to authenticate (or gave no answer in time)."""
        state = self._get(address)
        state.pending = max(0, state.pending - 1)
        state.failures.append(now_ms)
        while len(state.failures) > self.limits.max_failures:
            state.failures.popleft()

    def gone(self, address: str) -> None:
        """An admitted socket closed before it answered (neither success nor failure)."""
        state = self._get(address)
        state.pending = max(0, state.pending - 1)
        self._forget_if_idle(address, state)

    def failures(self, address: str, now_ms: int) -> int:
        """How many failures of ``address`` are inside the window at ``now_ms``."""
        state = self._addresses.get(address)
        if state is None:
            return 0
        self._expire(state, now_ms)
        return len(state.failures)
