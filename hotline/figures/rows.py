"""The figures as values: one row per directed link, one per relay ↔ endpoint hop.

These are what :class:`~hotline.figures.accumulator.LinkFigures` hands out; they
are computed afresh on each call and never change afterwards. ``as_dict`` gives
the JSON-ready form served at ``GET /v1/links`` and printed by
``hotline audit report --format json``; its keys and their order are part of
that interface.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hotline.figures.stats import Latency

__all__ = ["Figures", "HopRow", "LinkRow"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkRow:
    """What one directed link ``origin → recipient`` carried and how fast it answered."""

    origin: str
    recipient: str
    messages: int
    counts: Mapping[str, Mapping[str, int]]  # body type → status → messages
    delivered: int
    acknowledged: int
    rejected: int
    overdue: int
    redelivered: int
    delivery_ms: Latency
    ack_ms: Latency
    e2e_ms: Latency
    lead_time_s: Latency
    lead_time_delivered_s: Latency
    availability: float | None

    def as_dict(self) -> dict[str, object]:
        return {
            "from": self.origin,
            "to": self.recipient,
            "messages": self.messages,
            "counts": {kind: dict(by_status) for kind, by_status in self.counts.items()},
            "delivered": self.delivered,
            "acknowledged": self.acknowledged,
            "rejected": self.rejected,
            "overdue": self.overdue,
            "redelivered": self.redelivered,
            "delivery_ms": self.delivery_ms.as_dict(),
            "ack_ms": self.ack_ms.as_dict(),
            "e2e_ms": self.e2e_ms.as_dict(),
            "lead_time_s": self.lead_time_s.as_dict(),
            "lead_time_delivered_s": self.lead_time_delivered_s.as_dict(),
            "availability": self.availability,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class HopRow:
    """The relay ↔ endpoint hop, as measured by the relay's link tests."""

    endpoint: str
    tests: int
    answered: int
    availability: float | None
    rtt_ms: Latency
    clock_offset_ms: int | float | None
    connected: bool | None

    def as_dict(self) -> dict[str, object]:
        return {
            "endpoint": self.endpoint,
            "tests": self.tests,
            "answered": self.answered,
            "availability": self.availability,
            "rtt_ms": self.rtt_ms.as_dict(),
            "clock_offset_ms": self.clock_offset_ms,
            "connected": self.connected,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Figures:
    """Every link and hop, sorted, after ``entries`` entries; ``as_of`` is the latest relay_ts."""

    links: tuple[LinkRow, ...]
    hops: tuple[HopRow, ...]
    entries: int
    as_of: int | None

    def as_dict(self) -> dict[str, object]:
        return {
            "links": [row.as_dict() for row in self.links],
            "hops": [row.as_dict() for row in self.hops],
            "entries": self.entries,
            "as_of": self.as_of,
        }
