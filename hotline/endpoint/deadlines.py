"""Deadlines at an endpoint, sans-IO: which stage is late, reported once.

Rules:

- As a sender, each recipient of an accepted message owes a ``delivered`` and an
  ``acknowledged`` receipt within the precedence's deadlines, counted from when
  the relay's ``accepted`` receipt reached us (our clock, so no skew enters).
- As a recipient, our own operator owes an acknowledgement within the
  ``acknowledged`` deadline, counted from when the message reached us.
- A stage settled is never reported: what a receipt settles is the lifecycle
  table's (:func:`hotline.protocol.lifecycle.settles`: an ``acknowledged``
  receipt implies delivery, a ``rejected`` one ends both); a late one is reported
  exactly once, also across restarts (the keys already fired come back from the
  journal).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping

from hotline.endpoint.events import Overdue, Role
from hotline.endpoint.state import OverdueKey
from hotline.network import Deadline
from hotline.protocol.lifecycle import settles
from hotline.protocol.vocab import Precedence, Stage

__all__ = ["DeadlineTracker"]


class DeadlineTracker:
    """A heap of pending deadlines; :meth:`due` pops those that have passed."""

    def __init__(
        self, deadlines: Mapping[Precedence, Deadline], fired: Iterable[OverdueKey] = ()
    ) -> None:
        self._deadlines = deadlines
        self._heap: list[tuple[int, int, OverdueKey, Role, Precedence]] = []
        self._done: set[OverdueKey] = set(fired)
        self._counter = 0

    def _push(self, due_ms: int, key: OverdueKey, role: Role, precedence: Precedence) -> None:
        if key in self._done:
            return
        self._counter += 1
        heapq.heappush(self._heap, (due_ms, self._counter, key, role, precedence))

    def watch_sent(
        self, ref: bytes, recipients: Iterable[str], precedence: Precedence, accepted_ms: int
    ) -> None:
        """Our message was accepted at ``accepted_ms``: each recipient's clock starts."""
        deadline = self._deadlines[precedence]
        for party in recipients:
            self._push(
                accepted_ms + deadline.delivered_ms,
                OverdueKey(ref, party, Stage.DELIVERED),
                Role.SENDER,
                precedence,
            )
            self._push(
                accepted_ms + deadline.acknowledged_ms,
                OverdueKey(ref, party, Stage.ACKNOWLEDGED),
                Role.SENDER,
                precedence,
            )

    def watch_received(
        self, ref: bytes, me: str, precedence: Precedence, received_ms: int
    ) -> None:
        """A message reached us at ``received_ms``: our operator's clock starts."""
        deadline = self._deadlines[precedence]
        self._push(
            received_ms + deadline.acknowledged_ms,
            OverdueKey(ref, me, Stage.ACKNOWLEDGED),
            Role.RECIPIENT,
            precedence,
        )

    def reached(self, ref: bytes, party: str, stage: Stage) -> None:
        """``party`` reached ``stage`` for ``ref``: the stages it settles are met."""
        for met in settles(stage):
            self._done.add(OverdueKey(ref, party, met))

    def due(self, now_ms: int) -> list[Overdue]:
        """Every deadline passed by ``now_ms`` and not met, each reported once."""
        out: list[Overdue] = []
        while self._heap and self._heap[0][0] <= now_ms:
            due_ms, _, key, role, precedence = heapq.heappop(self._heap)
            if key in self._done:
                continue
            self._done.add(key)
            out.append(Overdue(key.ref, key.party, key.stage, role, precedence, due_ms, now_ms))
        return out

    def next_due(self) -> int | None:
        """When the earliest watched deadline falls, or None."""
        while self._heap and self._heap[0][2] in self._done:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None
