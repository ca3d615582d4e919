"""Figures per path: one network's links as each of its relays carried them.

In a network of several relays each relay keeps its own log, and each log gives
its own per-link figures (:class:`~hotline.figures.accumulator.LinkFigures`):
those are the figures *of that path*. :class:`PathLedger` reads the logs side
by side for what no single log shows:

- **first**: every recipient signs one ``delivered`` receipt per message, once,
  naming in ``via`` the relay that delivered the message to it first, and sends
  it over every relay; so each log proves, for each link, how many messages
  each path delivered first. A receipt found in both logs is counted once.
- **missing**: the messages one log holds and another lacks, each with the
  link-test evidence from the log that lacks it: whether that relay's link
  tests to the message's sender were answered around the time the other relay
  logged the message (the relay was reachable, so the message was not sent to
  it or it dropped it), or not (the relay or the sender's session to it was
  down). Only messages logged before both logs end, less the evidence window,
  are judged: a log exported earlier cannot hold what came after it ends, so
  the rest are listed apart (:meth:`PathLedger.after_end`), as no finding.

Pure: log entries in, values out; reading bundles is the caller's job.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from hotline.auditlog.leaf import decode_entry
from hotline.errors import HotlineError
from hotline.figures.rows import Figures
from hotline.network import Network
from hotline.protocol.admission import recipients_of
from hotline.protocol.bodies import (
    CancelBody,
    LinkTestBody,
    ReceiptBody,
    TextBody,
    WarningBody,
)
from hotline.protocol.envelope import open_envelope
from hotline.protocol.ids import format_id
from hotline.protocol.vocab import Stage

__all__ = ["EVIDENCE_WINDOW_MS", "Missing", "PathLedger", "RelayLog", "path_rows",
           "render_paths"]

EVIDENCE_WINDOW_MS: Final = 60_000
"""How far around a message's time the other log's link tests are read as evidence."""


@dataclass(slots=True)
class RelayLog:
    """What one relay's log says about messages, first deliveries and link tests."""

    relay: str
    messages: dict[bytes, tuple[str, tuple[str, ...], int]] = field(default_factory=dict)
    # message id → (sender, recipients, relay_ts)
    firsts: dict[bytes, tuple[bytes, str, str]] = field(default_factory=dict)
    # delivered receipt id → (ref, recipient, via)
    tests: dict[bytes, tuple[str, int]] = field(default_factory=dict)  # test id → (to, ts)
    answered: dict[bytes, int] = field(default_factory=dict)  # test id → answer's relay_ts
    entries: int = 0
    last_ts: int | None = None  # relay_ts of the log's last readable entry

    def add(self, entry: bytes, network: Network) -> None:
        """One entry of the log, in log order (unreadable entries are the verifier's job)."""
        self.entries += 1
        try:
            decoded = decode_entry(entry)
            if self.last_ts is None or decoded.relay_ts > self.last_ts:
                self.last_ts = decoded.relay_ts
            if decoded.envelope is None:
                return
            body = open_envelope(decoded.envelope, network, max_size=1 << 30).body
        except HotlineError:
            return
        ts = decoded.relay_ts
        if isinstance(body, WarningBody | CancelBody | TextBody):
            self.messages[body.id] = (body.sender, recipients_of(network, body.sender, body.to),
                                      ts)
        elif isinstance(body, LinkTestBody):
            self.tests[body.id] = (body.to[0], ts)
        elif isinstance(body, ReceiptBody) and body.stage is Stage.DELIVERED:
            if body.ref in self.tests:
                self.answered.setdefault(body.ref, ts)
            elif body.via is not None:
                self.firsts[body.id] = (body.ref, body.sender, body.via)

    def tests_of(self, party: str) -> list[tuple[int, bool]]:
        """(relay_ts, answered) of every link test to ``party``, in time order."""
        return sorted((ts, ident in self.answered)
                      for ident, (to, ts) in self.tests.items() if to == party)


@dataclass(frozen=True, slots=True)
class Missing:
    """A message ``has`` logged and ``lacks`` did not, with ``lacks``' link-test evidence."""

    id: bytes
    sender: str
    recipients: tuple[str, ...]
    has: str
    lacks: str
    logged_ts: int
    tests: int  # link tests of ``lacks`` to the sender within the window
    answered: int  # of those, answered
    reachable: bool  # ``lacks`` reached the sender then: answered link tests around it
    ends: str | None = None  # logged after this relay's bundle ends (less the window): unjudged

    def line(self) -> str:
        if self.ends is not None:
            return (f"{format_id(self.id)} {self.sender}→{','.join(self.recipients)} logged by "
                    f"{self.has} at {self.logged_ts}, not in {self.lacks}'s log; after "
                    f"{self.ends}'s bundle ends (within {EVIDENCE_WINDOW_MS // 1000} s of its "
                    "last entry or later): not judged")
        evidence = (
            f"relay {self.lacks} sent {self.sender} {self.tests} link tests within "
            f"{EVIDENCE_WINDOW_MS // 1000} s, {self.answered} answered: "
            + ("reachable, so it was not sent there or the relay dropped it" if self.reachable
               else "unreachable then (relay or sender's session down)")
        )
        return (f"{format_id(self.id)} {self.sender}→{','.join(self.recipients)} logged by "
                f"{self.has} at {self.logged_ts}, missing from {self.lacks}; {evidence}")

    def as_dict(self) -> dict[str, object]:
        return {"id": format_id(self.id), "from": self.sender, "to": list(self.recipients),
                "has": self.has, "lacks": self.lacks, "logged_ts": self.logged_ts,
                "tests": self.tests, "answered": self.answered, "reachable": self.reachable,
                "after_end_of": self.ends}


class PathLedger:
    """Several relays' logs of one network, compared."""

    def __init__(self, logs: Iterable[RelayLog]) -> None:
        self.logs: Mapping[str, RelayLog] = {log.relay: log for log in logs}

    def firsts(self) -> dict[tuple[str, str], Counter[str]]:
        """(origin, recipient) → relay → messages that relay delivered first."""
        senders = {
            ident: sender
            for log in self.logs.values()
            for ident, (sender, _to, _ts) in log.messages.items()
        }
        seen: dict[tuple[bytes, str], str] = {}
        for log in self.logs.values():
            for ref, recipient, via in log.firsts.values():
                # one message and recipient count once, however many logs hold the receipt
                # (or a receipt of its own for a relay that refused the first one)
                seen.setdefault((ref, recipient), via)
        out: dict[tuple[str, str], Counter[str]] = {}
        for (ref, recipient), via in seen.items():
            sender = senders.get(ref)
            if sender is not None:
                out.setdefault((sender, recipient), Counter())[via] += 1
        return out

    def missing(self) -> list[Missing]:
        """Every message one log holds and another lacks, oldest first.

        Only messages logged before both logs end, less :data:`EVIDENCE_WINDOW_MS`, are
        judged; the others are :meth:`after_end`'s.
        """
        return [m for m in self._compared() if m.ends is None]

    def after_end(self) -> list[Missing]:
        """What one log holds and another lacks, logged too near or after a log's end to judge."""
        return [m for m in self._compared() if m.ends is not None]

    def _compared(self) -> list[Missing]:
        out: list[Missing] = []
        for has in self.logs.values():
            for lacks in self.logs.values():
                if lacks is has:
                    continue
                first_end = min((has, lacks),
                                key=lambda log: -1 if log.last_ts is None else log.last_ts)
                cutoff = (None if first_end.last_ts is None
                          else first_end.last_ts - EVIDENCE_WINDOW_MS)
                tests: dict[str, list[tuple[int, bool]]] = {}
                for ident, (sender, recipients, ts) in has.messages.items():
                    if ident in lacks.messages:
                        continue
                    if cutoff is None or ts > cutoff:
                        out.append(Missing(ident, sender, recipients, has.relay, lacks.relay,
                                           ts, 0, 0, reachable=False, ends=first_end.relay))
                        continue
                    around = tests.setdefault(sender, lacks.tests_of(sender))
                    times = [t for t, _ in around]
                    lo = bisect.bisect_left(times, ts - EVIDENCE_WINDOW_MS)
                    hi = bisect.bisect_right(times, ts + EVIDENCE_WINDOW_MS)
                    window = around[lo:hi]
                    answered = sum(1 for _, ok in window if ok)
                    out.append(Missing(ident, sender, recipients, has.relay, lacks.relay, ts,
                                       len(window), answered,
                                       reachable=bool(window) and answered == len(window)))
        return sorted(out, key=lambda m: (m.logged_ts, m.id))


_PATH_HEADER: Final = (
    f"{'link':<12} {'relay':<10} {'msgs':>6} {'deliv':>6} {'acked':>6} {'dlv p50':>8} "
    f"{'dlv p99':>8} {'ack p99':>8} {'avail':>7} {'first':>6}"
)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def path_rows(
    figures: Mapping[str, Figures], firsts: Mapping[tuple[str, str], Counter[str]]
) -> list[dict[str, object]]:
    """One row per link and relay: that relay's log's figures, and its first deliveries."""
    links = sorted({(row.origin, row.recipient) for f in figures.values() for row in f.links})
    rows: list[dict[str, object]] = []
    for link in links:
        for relay, result in figures.items():
            row = next((r for r in result.links if (r.origin, r.recipient) == link), None)
            rows.append({
                "from": link[0], "to": link[1], "relay": relay,
                "messages": 0 if row is None else row.messages,
                "delivered": 0 if row is None else row.delivered,
                "acknowledged": 0 if row is None else row.acknowledged,
                "delivery_ms": None if row is None else row.delivery_ms.as_dict(),
                "ack_ms": None if row is None else row.ack_ms.as_dict(),
                "availability": None if row is None else row.availability,
                "first": firsts.get(link, Counter())[relay],
            })
    return rows


def render_paths(
    figures: Mapping[str, Figures], firsts: Mapping[tuple[str, str], Counter[str]]
) -> str:
    """The per-path table: every link once per relay, the relays side by side."""
    lines = [_PATH_HEADER]
    for link in sorted({(r.origin, r.recipient) for f in figures.values() for r in f.links}):
        for relay, result in figures.items():
            row = next((r for r in result.links if (r.origin, r.recipient) == link), None)
            first = firsts.get(link, Counter())[relay]
            name = f"{link[0]}→{link[1]}"
            if row is None:
                lines.append(f"{name:<12} {relay:<10} {0:>6} {0:>6} {0:>6} {'-':>8} {'-':>8} "
                             f"{'-':>8} {'-':>7} {first:>6}")
                continue
            avail = "-" if row.availability is None else f"{row.availability * 100:.1f}%"
            lines.append(
                f"{name:<12} {relay:<10} {row.messages:>6} {row.delivered:>6} "
                f"{row.acknowledged:>6} {_ms(row.delivery_ms.p50):>8} "
                f"{_ms(row.delivery_ms.p99):>8} {_ms(row.ack_ms.p99):>8} {avail:>7} {first:>6}"
            )
    return "\n".join(lines) + "\n"
