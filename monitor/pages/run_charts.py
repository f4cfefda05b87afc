"""The chart of one metric on a run's page: this run and the compared runs, raw points (faint)
and their smoothed line each, step on x. Zoom and hover work (they are the viewer's own, in the
browser); trace names are fixed words ("run 1 raw"), never a run's or metric's name, which stay
in labels beside the chart."""

from __future__ import annotations

from typing import Any

from monitor.pages.series import Drawn

COLOURS = ("#f0883e", "#58a6ff", "#b083f0", "#39c5cf", "#e3b341", "#ff7b72")
FAINT = 0.3


def colour(k: int) -> str:
    return COLOURS[k % len(COLOURS)]


def _faint(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {FAINT})"


def traces_of(k: int, d: Drawn | None) -> list[dict[str, Any]]:
    """Run k's two traces (raw, smoothed); k = 0 is the page's own run."""
    x, raw, sx, smooth = (d.x, d.raw, d.sx, d.smooth) if d else ([], [], [], [])
    word = "this run" if k == 0 else f"compare {k}"
    return [
        {"type": "scatter", "mode": "lines", "x": x, "y": raw,
         "name": f"{word} raw", "line": {"color": _faint(colour(k)), "width": 1}, "hoverinfo": "skip"},
        {"type": "scatter", "mode": "lines", "x": sx, "y": smooth, "name": f"{word} smoothed",
         "line": {"color": colour(k), "width": 2}, "hovertemplate": f"step %{{x}}: %{{y:.5g}}<extra>{word}</extra>"},
    ]


def metric_figure(drawn: list[Drawn | None]) -> dict[str, Any]:
    data = [t for k, d in enumerate(drawn) for t in traces_of(k, d)]
    axis = {"gridcolor": "rgba(148, 163, 184, 0.12)", "zeroline": False, "color": "#8d9bb0"}
    return {
        "data": data,
        "layout": {
            "margin": {"l": 48, "r": 8, "t": 6, "b": 28},
            "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
            "showlegend": False, "autosize": True, "hovermode": "x",
            "font": {"color": "#8d9bb0", "size": 11},
            "xaxis": {**axis, "title": {"text": "step"}}, "yaxis": axis,
        },
        "config": {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]},
    }
