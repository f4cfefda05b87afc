"""Colours, thresholds-to-state helpers and the stylesheet of the wall.

Everything is sized in rem and the root font size follows the viewport (min of vw and vh), so the
same layout fills a 1080p and a 4K screen without scrollbars and stays readable from five metres.
"""

from __future__ import annotations

from pathlib import Path

GRID = "rgba(148, 163, 184, 0.10)"
UTIL = "#3fb950"
MEM = "#b083f0"
CPU = "#39c5cf"
RUN_RAW = "rgba(240, 136, 62, 0.30)"  # a run card's raw points, faint
RUN_EMA = "#f0883e"  # and their smoothed line

CHART_TRACES = {
    "gpu": (
        {"name": "util", "color": UTIL, "width": 2, "fill": "rgba(63, 185, 80, 0.16)"},
        {"name": "memory", "color": MEM, "width": 1.6},
    ),
    "host": (
        {"name": "cpu", "color": CPU, "width": 2, "fill": "rgba(57, 197, 207, 0.14)"},
        {"name": "memory", "color": MEM, "width": 1.6},
    ),
}


def level_at_or_above(value: float | None, warn: float, crit: float) -> str:
    if value is None:
        return ""
    return "crit" if value >= crit else "warn" if value >= warn else ""


TEMP_WARN_BELOW_C = 8.0  # a GPU turns amber this many degrees below thresholds.gpu_temp_c


def temperature_level(celsius: float | None, limit_c: float) -> str:
    """Amber close to the GPU temperature limit, red at it: one rule for local tiles and host rows."""
    return level_at_or_above(celsius, limit_c - TEMP_WARN_BELOW_C, limit_c)


CSS = Path(__file__).with_name("wall.css")
OVERVIEW_CSS = Path(__file__).with_name("overview.css")
