"""``LogThrottle``: how many lines of one event a flood may write (sans-IO).

Some events are one line per attempt of a peer nobody has authenticated yet
(``session_refused``, ``authentication_refused``, a failed TLS handshake) or one
line per tick of a fault that persists (``tick_failed``). Written each time, a
peer that loops on the relay's port, or a disk that refuses the checkpoint file,
fills the relay's log disk and buries the lines that matter.

The throttle lets the first ``burst`` lines of an event through in each window
of ``window_ms``, of which at most ``per_peer`` of one peer (an address) when the
caller names it, so that one address looping on the port cannot use up the
lines that would show the others; it counts the rest, and never loses the count:

- the next line of that event written after its window ended carries how many
  were held back before it (``suppressed``);
- :meth:`LogThrottle.due` hands over, once, the count of a window that ended
  with lines held back, so that a flood that stops is still reported (the
  relay logs it as ``log_lines_suppressed``).

Every event is counted on its own. Nothing else changes: the counters behind
``/metrics`` count every attempt. Time is what the caller passes (ms); a clock
that steps back starts a new window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from hotline.errors import UsageError

__all__ = ["DEFAULT_BURST", "DEFAULT_PER_PEER", "DEFAULT_WINDOW_MS", "LogThrottle"]

DEFAULT_BURST: Final = 20
"""Lines of one event written per window before the rest are held back."""
DEFAULT_WINDOW_MS: Final = 60_000
DEFAULT_PER_PEER: Final = 5
"""Lines of one event one peer may write per window (a quarter of the burst)."""


@dataclass(slots=True)
class _Window:
    start_ms: int
    written: int = 0
    held: int = 0
    """Held back in this window, not yet reported."""
    by_peer: dict[str, int] = field(default_factory=dict)
    """Lines written in this window by each peer named (at most ``burst`` entries)."""


class LogThrottle:
    """At most ``burst`` lines of each event per ``window_ms``; the rest counted, then reported."""

    def __init__(self, *, burst: int = DEFAULT_BURST, window_ms: int = DEFAULT_WINDOW_MS,
                 per_peer: int = DEFAULT_PER_PEER) -> None:
        if burst < 1 or window_ms < 1 or per_peer < 1:
            raise UsageError("burst, window_ms and per_peer must be at least 1, not "
                             f"{burst}, {window_ms}, {per_peer}")
        self.burst: Final = burst
        self.window_ms: Final = window_ms
        self.per_peer: Final = min(per_peer, burst)
        self._windows: dict[str, _Window] = {}

    def admit(self, event: str, now_ms: int, peer: str | None = None) -> int | None:
        """Whether to write this line of ``event`` (from ``peer``, if named): None to hold
        it back (it is counted); else how many lines of ``event`` were held back before it
        and not yet reported."""
        window = self._windows.get(event)
        if window is None or not window.start_ms <= now_ms < window.start_ms + self.window_ms:
            carried = 0 if window is None else window.held
            self._windows[event] = _Window(
                now_ms, written=1, by_peer={} if peer is None else {peer: 1})
            return carried
        if window.written < self.burst:
            if peer is not None:
                written = window.by_peer.get(peer, 0)
                if written >= self.per_peer:
                    window.held += 1
                    return None
                window.by_peer[peer] = written + 1
            window.written += 1
            carried, window.held = window.held, 0
            return carried
        window.held += 1
        return None

    def fields(self, event: str, now_ms: int, peer: str | None = None
               ) -> dict[str, object] | None:
        """:meth:`admit` as the fields to add to the line: None to hold it back; else
        ``{"suppressed": n}`` when ``n`` lines were held back before it, or ``{}``."""
        held = self.admit(event, now_ms, peer)
        if held is None:
            return None
        return {"suppressed": held} if held else {}

    def due(self, now_ms: int) -> list[tuple[str, int]]:
        """``(event, lines held back)`` for each window that has ended with lines held back;
        each count is handed over once. Windows that ended are forgotten."""
        reported: list[tuple[str, int]] = []
        for event, window in list(self._windows.items()):
            if window.start_ms <= now_ms < window.start_ms + self.window_ms:
                continue
            if window.held:
                reported.append((event, window.held))
            del self._windows[event]
        return reported
