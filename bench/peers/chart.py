"""A hand-written SVG chart of the medians: no plotting library, same bytes for same figures.

Three panels side by side (messages/s, p50 latency, server CPU per message),
each on a log scale because the systems differ by more than an order of
magnitude; within a panel one group of bars per mode, one bar per system,
each bar labelled with its value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Final

from peers.report import Median

__all__ = ["svg_chart"]

COLOURS: Final = ("#c0392b", "#e67e22", "#2471a3", "#7d3c98", "#229954", "#555555", "#b9770e")
# Each known system keeps its colour whichever of them ran.
SYSTEM_COLOURS: Final = {"hotline": 0, "hotline-cluster": 1, "nats": 2, "nats-ed25519": 3,
                         "mosquitto": 4, "ceiling": 5, "floor": 6}
# The ceiling is a loop, not a carrier: it has no latency to show.
NO_LATENCY: Final = frozenset({"ceiling"})
PANELS: Final = (
    ("msgs_per_s", "round trips per second (higher is better)"),
    ("p50_ms", "p50 round-trip latency, ms (lower is better)"),
    ("server_cpu_us_per_msg", "server CPU per round trip, µs (lower is better)"),
)
PANEL_W: Final = 330
PANEL_H: Final = 260
TOP: Final = 56
LEFT: Final = 46
BOTTOM: Final = 46


def _label(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _colour(system: str, position: int) -> str:
    return COLOURS[SYSTEM_COLOURS.get(system, position) % len(COLOURS)]


def _decades(values: Sequence[float]) -> tuple[int, int]:
    positive = [v for v in values if v > 0]
    low = math.floor(math.log10(min(positive))) if positive else 0
    high = math.ceil(math.log10(max(positive))) if positive else 1
    return low, max(high, low + 1)


def _panel(x0: float, metric: str, title: str, medians: Sequence[Median], *,
           systems: list[str], modes: list[str]) -> list[str]:
    medians = [m for m in medians if metric != "p50_ms" or m.system not in NO_LATENCY]
    values = [m.values[metric] for m in medians]
    low, high = _decades(values)
    plot_h = PANEL_H - BOTTOM
    plot_w = PANEL_W - LEFT - 14

    def y(value: float) -> float:
        share = (math.log10(max(value, 10.0 ** low)) - low) / (high - low)
        return TOP + plot_h * (1 - share)

    out = [f'<text x="{x0 + LEFT + plot_w / 2:.1f}" y="{TOP - 14}" class="title">'
           f"{escape(title)}</text>"]
    for exponent in range(low, high + 1):
        gy = y(10.0 ** exponent)
        out.append(f'<line x1="{x0 + LEFT}" y1="{gy:.1f}" x2="{x0 + LEFT + plot_w}" '
                   f'y2="{gy:.1f}" class="grid"/>')
        out.append(f'<text x="{x0 + LEFT - 4}" y="{gy + 4:.1f}" class="tick">'
                   f"{_label(10.0 ** exponent)}</text>")
    group_w = plot_w / len(modes)
    bar_w = min(34.0, (group_w - 16) / max(1, len(systems)))
    for g, mode in enumerate(modes):
        gx = x0 + LEFT + g * group_w + (group_w - bar_w * len(systems)) / 2
        for s, system in enumerate(systems):
            hit = [m for m in medians if m.mode == mode and m.system == system]
            if not hit:
                continue
            value = hit[0].values[metric]
            bx, top = gx + s * bar_w, y(value)
            out.append(f'<rect x="{bx + 2:.1f}" y="{top:.1f}" width="{bar_w - 4:.1f}" '
                       f'height="{TOP + plot_h - top:.1f}" fill="{_colour(system, s)}"/>')
            out.append(f'<text x="{bx + bar_w / 2:.1f}" y="{top - 4:.1f}" class="value">'
                       f"{_label(value)}</text>")
        out.append(f'<text x="{x0 + LEFT + g * group_w + group_w / 2:.1f}" '
                   f'y="{TOP + plot_h + 18}" class="mode">{escape(mode)}</text>')
    out.append(f'<line x1="{x0 + LEFT}" y1="{TOP + plot_h}" x2="{x0 + LEFT + plot_w}" '
               f'y2="{TOP + plot_h}" class="axis"/>')
    return out


def svg_chart(medians: Sequence[Median], caption: str) -> str:
    systems = list(dict.fromkeys(m.system for m in medians))
    modes = list(dict.fromkeys(m.mode for m in medians))
    width = PANEL_W * len(PANELS) + 10
    notes = caption.splitlines() or [""]
    height = TOP + PANEL_H + 10 + 14 * len(notes)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
        "<style>.title{font-size:12px;text-anchor:middle;font-weight:bold}"
        ".tick{font-size:10px;text-anchor:end;fill:#555}"
        ".value{font-size:9px;text-anchor:middle}"
        ".mode{font-size:11px;text-anchor:middle}"
        ".legend{font-size:11px}.caption{font-size:10px;fill:#555}"
        ".grid{stroke:#ddd;stroke-width:1}.axis{stroke:#333;stroke-width:1}</style>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    x = 10.0
    for s, system in enumerate(systems):
        parts.append(f'<rect x="{x:.1f}" y="10" width="12" height="12" '
                     f'fill="{_colour(system, s)}"/>')
        parts.append(f'<text x="{x + 16:.1f}" y="20" class="legend">{escape(system)}</text>')
        x += 26 + 7 * len(system)
    for p, (metric, title) in enumerate(PANELS):
        parts += _panel(p * PANEL_W, metric, title, medians, systems=systems, modes=modes)
    for n, note in enumerate(notes):
        parts.append(f'<text x="10" y="{height - 10 - 14 * (len(notes) - 1 - n)}" '
                     f'class="caption">{escape(note)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
