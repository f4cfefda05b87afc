"""The header's "GPU-hours this week" strip: the top users of the last 7 days by GPU-hours, each with
the share of those hours their GPUs sat idle; a user at or above IDLE_MARK is marked.

The numbers are /api/usage?by=user's (the same report over the same 7 days), computed by the feed
once for every viewer, at most every REFRESH_S and only when a usage minute closed (or a minute
passed, so the week's window moves on). Slots are fixed and hidden while empty; text stays text.
"""

from __future__ import annotations

import math
from typing import Any

from nicegui import ui

from monitor.model.usage import UsageLedger
from monitor.usage.report import usage_report
from monitor.wall.cells import Cell, CellView

SLOTS = 4  # as many as fit beside the title and the fleet totals; the rest wrap out of sight
IDLE_MARK = 0.5  # idle share at or above which a user is marked
REFRESH_S = 5.0
WINDOW_S = 7 * 86400.0
UNKNOWN_USER = "unknown"


def hours_text(hours: float) -> str:
    if hours >= 9.95:
        return f"{hours:.0f} h"
    return f"{hours:.1f} h" if hours >= 0.995 else f"{hours:.2f} h"


def idle_text(share: float) -> str:
    return f"{math.floor(100 * share + 0.5):.0f} %"  # the strip's title says "idle share"


def idle_share(row: dict[str, Any]) -> float:
    return row["idle_gpu_hours"] / row["gpu_hours"] if row["gpu_hours"] > 0 else 0.0


def strip_cells(rows: list[dict[str, Any]]) -> dict[str, Cell]:
    """The strip's cells from /api/usage?by=user rows (largest first)."""
    shown = [r for r in rows if r["gpu_hours"] > 0][:SLOTS]
    cells = {"us.none": Cell("none recorded yet", level="off" if shown else "")}
    for i in range(SLOTS):
        k = f"us.{i}"
        if i >= len(shown):
            cells[k] = Cell(level="off")
            continue
        row = shown[i]
        share = idle_share(row)
        cells[k] = Cell(level="warn" if share >= IDLE_MARK else "")
        cells[k + ".n"] = Cell(row["key"] or UNKNOWN_USER)
        cells[k + ".h"] = Cell(hours_text(row["gpu_hours"]))
        cells[k + ".i"] = Cell(idle_text(share))
    return cells


class UsageStrip:
    """Process-wide (one per feed): the strip's cells, recomputed only when they can have changed."""

    def __init__(self, ledger: UsageLedger) -> None:
        self.ledger = ledger
        self.computed_at = -math.inf
        self.cursor = -1
        self.cached: dict[str, Cell] = {}

    def cells(self, now: float) -> dict[str, Cell]:
        age = now - self.computed_at
        if age >= REFRESH_S and (self.ledger.cursor != self.cursor or age >= 60.0 or age < 0):
            self.cursor = self.ledger.cursor
            self.computed_at = now
            report = usage_report(self.ledger, "user", now - WINDOW_S, now, "day")
            self.cached = strip_cells(report["rows"])
        return self.cached


def build_strip(view: CellView) -> None:
    # A plain link to /usage (a laptop's click; a kiosk never clicks; no listener on the wall).
    with ui.link(target="/usage").classes("usage"):
        ui.label("GPU-hours this week · idle share").classes("kpi-l")
        with ui.element("div").classes("us-row"):
            view.label("us.none", "us-none")
            for i in range(SLOTS):
                with view.bind(f"us.{i}", ui.element("div").classes("us-u")):
                    view.label(f"us.{i}.n", "us-n")
                    view.label(f"us.{i}.h", "us-h")
                    view.label(f"us.{i}.i", "us-i")
