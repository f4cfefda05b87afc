"""The header's "GPU-hours this week" strip: the top users of the last 7 days by GPU-hours, each with
the share of those hours their GPUs sat idle; a user at or above IDLE_MARK is marked.

The numbers are /api/usage?by=user's (the same report over the same 7 days), computed by the feed
once for every viewer, at most every REFRESH_S and only when a usage minute closed (or a minute
passed, so the week's window moves on). Slots are fixed and hidden while empty; text stays text.
With the prometheus source on, a fresh "lab_usage" document (every host's counters summed by
Prometheus, collectors/prometheus/lab_usage.py) replaces this host's numbers, and the title says
"lab-wide"; when it is missing or too old, the strip shows this host again.
"""

from __future__ import annotations

import math
from typing import Any

from nicegui import ui

from monitor.model.documents import LabUsageDocument, LabUsageField, Source, StateReader
from monitor.model.usage import UsageLedger
from monitor.usage.report import usage_report
from monitor.wall.cells import Cell, CellView

SLOTS = 4  # as many as fit beside the title and the fleet totals; the rest wrap out of sight
IDLE_MARK = 0.5  # idle share at or above which a user is marked
REFRESH_S = 5.0
WINDOW_S = 7 * 86400.0
UNKNOWN_USER = "unknown"
TITLE = "GPU-hours this week · idle share"
LAB_TITLE = "GPU-hours this week · lab-wide · idle share"


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


def fresh_lab_usage(lab: StateReader | None, now: float) -> LabUsageDocument | None:
    """The "lab_usage" document while it is younger than its own max_age_s, else None."""
    found = lab.state(Source.LAB_USAGE) if lab is not None else None
    if not found or not isinstance(found[1], dict):
        return None
    doc = found[1]
    age = now - float(doc.get(LabUsageField.TIME, -math.inf))
    return doc if -60.0 <= age <= float(doc.get(LabUsageField.MAX_AGE_S, 0.0)) else None  # type: ignore[return-value]


def lab_rows(doc: LabUsageDocument) -> list[dict[str, Any]]:
    """The document's users in /api/usage's row shape (key, gpu_hours, idle_gpu_hours)."""
    return [{"key": u[LabUsageField.USER], "gpu_hours": u[LabUsageField.GPU_HOURS],
             "idle_gpu_hours": u[LabUsageField.IDLE_GPU_HOURS]} for u in doc[LabUsageField.USERS]]


class UsageStrip:
    """Process-wide (one per feed): the strip's cells, recomputed only when they can have changed.
    `lab` (the store, when the prometheus source is on) holds the lab-wide document."""

    def __init__(self, ledger: UsageLedger, lab: StateReader | None = None) -> None:
        self.ledger = ledger
        self.lab = lab
        self.computed_at = -math.inf
        self.cursor = -1
        self.lab_time: float | None = None  # the lab document the cells show; None: this host's
        self.cached: dict[str, Cell] = {}

    def cells(self, now: float) -> dict[str, Cell]:
        doc = fresh_lab_usage(self.lab, now)
        if doc is not None:
            if doc[LabUsageField.TIME] != self.lab_time:
                self.lab_time = doc[LabUsageField.TIME]
                self.cached = {**strip_cells(lab_rows(doc)), "us.title": Cell(LAB_TITLE)}
            return self.cached
        age = now - self.computed_at
        if self.lab_time is not None or (
                age >= REFRESH_S and (self.ledger.cursor != self.cursor or age >= 60.0 or age < 0)):
            self.lab_time = None
            self.cursor = self.ledger.cursor
            self.computed_at = now
            report = usage_report(self.ledger, "user", now - WINDOW_S, now, "day")
            self.cached = {**strip_cells(report["rows"]), "us.title": Cell(TITLE)}
        return self.cached


def build_strip(view: CellView) -> None:
    # A plain link to /usage (a laptop's click; a kiosk never clicks; no listener on the wall).
    with ui.link(target="/usage").classes("usage"):
        view.label("us.title", "kpi-l", Cell(TITLE))
        with ui.element("div").classes("us-row"):
            view.label("us.none", "us-none")
            for i in range(SLOTS):
                with view.bind(f"us.{i}", ui.element("div").classes("us-u")):
                    view.label(f"us.{i}.n", "us-n")
                    view.label(f"us.{i}.h", "us-h")
                    view.label(f"us.{i}.i", "us-i")
