"""The endpoint's own figures per relay path, from the arrivals it journaled (sans-IO).

For each peer, direction and relay: how many of the messages (``in``: to us
from the peer) or delivered receipts (``out``: the peer's, for our messages)
came over that relay, how many of them came over it first, and how far behind
the first path it was (p50 and max, in ms of our clock). Served per relay in
``GET /api/links`` beside that relay's own per-link figures (``/v1/links``:
delivery and acknowledgement latency, availability) in a network of several
relays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hotline.figures.stats import Latency

if TYPE_CHECKING:
    from hotline.endpoint.journal_paths import PathArrival

__all__ = ["path_figures"]


@dataclass(slots=True)
class _Tally:
    came: int = 0
    first: int = 0
    behind_ms: list[int] = field(default_factory=list)


def path_figures(arrivals: Iterable[PathArrival], relays: Iterable[str]) -> list[dict[str, object]]:
    """One row per peer, direction and relay, sorted; see the module docstring."""
    order = list(relays)
    firsts: dict[tuple[bytes, str], int] = {}
    rows = list(arrivals)
    for ident, _relay, _ref, _party, _stage, at, _index, first in rows:
        if first:
            firsts[(ident, _party)] = at
    tallies: dict[tuple[str, str, str], _Tally] = {}
    for ident, relay, _ref, party, stage, at, _index, first in rows:
        direction = "in" if stage == "message" else "out"
        tally = tallies.setdefault((party, direction, relay), _Tally())
        tally.came += 1
        if first:
            tally.first += 1
        elif (ident, party) in firsts:
            tally.behind_ms.append(max(0, at - firsts[(ident, party)]))
    out: list[dict[str, object]] = []
    for (party, direction, relay), tally in sorted(
        tallies.items(), key=lambda kv: (kv[0][0], kv[0][1], order.index(kv[0][2])
                                         if kv[0][2] in order else len(order))
    ):
        behind = Latency.of(tally.behind_ms)
        out.append({"peer": party, "direction": direction, "relay": relay, "came": tally.came,
                    "first": tally.first, "behind_ms": {"p50": behind.p50, "max": behind.max,
                                                        "count": behind.count}})
    return out
