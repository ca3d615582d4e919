"""The figures as a plain-text table for people: links, hops, then reciprocity.

Pure formatting: values in, one string out (the caller prints it). Every link
of the figures gets exactly one line, named ``ORIGIN→RECIPIENT``; a missing
value (no samples, nothing decided yet) is shown as ``-``.
"""

from __future__ import annotations

from hotline.figures.rows import Figures, HopRow, LinkRow
from hotline.figures.stats import Number

__all__ = ["HOP_COLUMNS", "LINK_COLUMNS", "render_legend", "render_text"]

LINK_COLUMNS: tuple[tuple[str, str], ...] = (
    ("link", "the directed link, origin→recipient"),
    ("msgs", "warnings, updates, cancels and texts the origin sent on the link"),
    ("deliv", "of those, delivered: the recipient's delivered receipt is in the log"),
    ("acked", "of those, acknowledged by the recipient's duty officer"),
    ("rej", "of those, refused by the recipient with a rejected receipt"),
    ("dlv p50", "delivery latency in ms, the relay's acceptance → the recipient's delivered "
                "receipt logged: median"),
    ("dlv p99", "the same, 99th percentile"),
    ("ack p99", "acknowledgement latency in ms, delivered → acknowledged receipt: "
                "99th percentile"),
    ("e2e p50", "end-to-end latency in ms, the origin's ts → the recipient's delivery, "
                "corrected for clock offsets: median"),
    ("avail", "availability of the recipient (its hop's avail); — for a link that carried "
              "no message"),
    ("overdue", "deadlines missed on the link (delivered or acknowledged), each counted once"),
    ("redeliv", "resends by the relay of a message whose delivered receipt had not come"),
)
"""The link table's columns and what each means (docs/relay.md has the same words)."""

HOP_COLUMNS: tuple[tuple[str, str], ...] = (
    ("hop", "the relay ↔ endpoint hop, named by the endpoint"),
    ("tests", "link tests the relay sent to the endpoint"),
    ("answered", "of those, answered with a delivered receipt"),
    ("avail", "link tests answered in time / (in time + failed), a test failing only while "
              "both ends were up"),
    ("rtt p50", "round trip of a link test in ms, test logged → answer logged: median"),
    ("rtt p99", "the same, 99th percentile"),
    ("offset", "the endpoint's clock minus the relay's in ms, estimated from link tests"),
    ("connected", "whether the endpoint was connected at the last entry counted (the demo "
                  "counts up to just before its shutdown)"),
)
"""The hop table's columns and what each means (docs/relay.md has the same words)."""

_LINK_HEADER = (
    f"{'link':<12} {'msgs':>6} {'deliv':>6} {'acked':>6} {'rej':>4} {'dlv p50':>8} "
    f"{'dlv p99':>8} {'ack p99':>8} {'e2e p50':>8} {'avail':>7} {'overdue':>7} {'redeliv':>7}"
)
_HOP_HEADER = (
    f"{'hop':<12} {'tests':>6} {'answered':>8} {'avail':>7} {'rtt p50':>8} {'rtt p99':>8} "
    f"{'offset':>8} {'connected':>9}"
)


def _ms(value: Number | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _link_line(row: LinkRow) -> str:
    name = f"{row.origin}→{row.recipient}"
    availability = _share(row.availability) if row.messages else "—"
    return (
        f"{name:<12} {row.messages:>6} {row.delivered:>6} {row.acknowledged:>6} "
        f"{row.rejected:>4} {_ms(row.delivery_ms.p50):>8} {_ms(row.delivery_ms.p99):>8} "
        f"{_ms(row.ack_ms.p99):>8} {_ms(row.e2e_ms.p50):>8} {availability:>7} "
        f"{row.overdue:>7} {row.redelivered:>7}"
    )


def _hop_line(row: HopRow) -> str:
    connected = {True: "yes", False: "no", None: "-"}[row.connected]
    return (
        f"{row.endpoint:<12} {row.tests:>6} {row.answered:>8} {_share(row.availability):>7} "
        f"{_ms(row.rtt_ms.p50):>8} {_ms(row.rtt_ms.p99):>8} {_ms(row.clock_offset_ms):>8} "
        f"{connected:>9}"
    )


def _reciprocity(links: tuple[LinkRow, ...]) -> list[str]:
    sent = {(row.origin, row.recipient): row.messages for row in links}
    pairs = sorted({tuple(sorted((a, b))) for a, b in sent})
    lines = []
    for a, b in pairs:
        lines.append(
            f"{a}↔{b}: {a}→{b} {sent.get((a, b), 0)} / {b}→{a} {sent.get((b, a), 0)}"
        )
    return lines


def render_legend() -> str:
    """One line per column of the link and hop tables, with what it means."""
    lines = ["legend: links"]
    lines += [f"  {name:<9} {meaning}" for name, meaning in LINK_COLUMNS]
    lines += ["legend: hops"]
    lines += [f"  {name:<9} {meaning}" for name, meaning in HOP_COLUMNS]
    return "\n".join(lines) + "\n"


def render_text(figures: Figures) -> str:
    """Links (times in ms), hops (round trip and clock offset in ms), reciprocity per pair."""
    lines = ["links (times in ms; e2e corrected for clock offsets)", _LINK_HEADER]
    lines += [_link_line(row) for row in figures.links]
    lines += ["", "relay ↔ endpoint hops (link tests; times in ms)", _HOP_HEADER]
    lines += [_hop_line(row) for row in figures.hops]
    lines += ["", "reciprocity (messages each way)"]
    lines += _reciprocity(figures.links) or ["-"]
    return "\n".join(lines) + "\n"
