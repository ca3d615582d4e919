"""Per-link figures of SPEC §6: counts, latencies, availability, lead times.

One accumulator, :class:`LinkFigures`, folds audit-log entries in log order;
the relay feeds it live and ``hotline audit report`` feeds it a bundle, so both
agree by construction. Everything here is pure (no I/O, no clock, no asyncio):

- :mod:`hotline.figures.stats`: nearest-rank percentiles, the median, :class:`Latency`;
- :mod:`hotline.figures.rows`: the figures as frozen values, and their JSON form;
- :mod:`hotline.figures.accumulator`: :class:`LinkFigures` and its invariants;
- :mod:`hotline.figures.text`: the plain-text table of ``hotline audit report``.
"""

from __future__ import annotations

from hotline.figures.accumulator import LinkFigures
from hotline.figures.rows import Figures, HopRow, LinkRow
from hotline.figures.stats import Latency, median, nearest_rank
from hotline.figures.text import HOP_COLUMNS, LINK_COLUMNS, render_legend, render_text

__all__ = [
    "HOP_COLUMNS",
    "LINK_COLUMNS",
    "Figures",
    "HopRow",
    "Latency",
    "LinkFigures",
    "LinkRow",
    "median",
    "nearest_rank",
    "render_legend",
    "render_text",
]
