"""The text sections of a run's page: status and facts, status history, hyperparameters, GPUs,
files and bad lines. Every outside text goes through a label (Vue text, never HTML)."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from monitor.model.numbers import finite
from monitor.pages import run_data
from monitor.wall import format as fmt
from monitor.wall.cells import Cell, CellView

STATUSES = ("running", "stalled", "finished", "crashed", "deleted")


def info_cells(run: dict[str, Any]) -> dict[str, Cell]:
    status = fmt.text(run.get("status"), "unknown")
    bad = int(finite(run.get("bad_lines")) or 0)
    first = run.get("first_bad_line") or {}
    return {
        "name": Cell(fmt.text(run.get("name"), run["id"])),
        "status": Cell(status.upper(), level=status if status in STATUSES else ""),
        "reason": Cell(fmt.text(run.get("status_reason"), ""), level="" if run.get("status_reason") else "off"),
        "step": Cell(run_data.step_text(run)),
        "rate": Cell(run_data.rate_text(run)),
        "started": Cell(f"started {run_data.when(run.get('started'))}"),
        "updated": Cell(f"updated {run_data.when(run.get('updated'))}"),
        "format": Cell(f"format {fmt.text(run.get('format'))}"),
        "path": Cell(fmt.text(run.get("path"))),
        "bad": Cell(f"{bad} bad line{'s' if bad != 1 else ''}" if bad else "no bad lines", level="warn" if bad else ""),
        "first_bad": Cell(f"first: {fmt.text(first.get('file'))}:{fmt.text(first.get('line'))}: "
                          f"{fmt.text(first.get('reason'))}" if first else "", level="" if first else "off"),
    }


def build_top(view: CellView) -> None:
    with ui.element("div").classes("lw-section rp-status"):
        with ui.element("div").classes("rp-top"):
            view.label("name", "rp-name")
            view.label("status", "lw-badge")
            view.label("reason", "rp-reason")
        with ui.element("div").classes("rp-facts"):
            for key in ("step", "rate", "started", "updated", "format"):
                view.label(key, f"rp-{key}")
        view.label("path", "lw-mono lw-v")


def table(rows: list[tuple[str, ...]], heads: tuple[str, ...], classes: str = "") -> None:
    with ui.element("div").classes(f"lw-table {classes}").style(
            f"grid-template-columns: repeat({len(heads)}, minmax(0, auto))"):
        for h in heads:
            ui.label(h).classes("lw-th")
        for row in rows:
            for cell in row:
                ui.label(str(cell))


class Sections:
    """The sections that change rarely: rebuilt (for this viewer) only when their content changed."""

    def __init__(self, view: CellView) -> None:
        self.view = view
        self.shown: dict[str, Any] = {}
        self.boxes: dict[str, ui.element] = {}

    def box(self, key: str, title: str) -> None:
        with ui.element("div").classes(f"lw-section rp-{key}"):
            ui.label(title).classes("lw-sec-t")
            self.boxes[key] = ui.element("div")

    def build(self) -> None:
        self.box("history", "Status history")

    def build_details(self) -> None:
        with ui.element("div").classes("rp-cols"):
            self.box("params", "Hyperparameters")
            self.box("gpus", "GPUs")
            with ui.element("div").classes("lw-section rp-files"):
                ui.label("Files and bad lines").classes("lw-sec-t")
                self.view.label("bad", "rp-bad")
                self.view.label("first_bad", "lw-mono lw-v")
                self.boxes["files"] = ui.element("div")

    def show(self, run: dict[str, Any], gpu_doc: dict[str, Any] | None) -> None:
        content = {
            "history": run_data.history_rows(run),
            "params": sorted((run.get("params") or {}).items()),
            "gpus": run_data.gpu_rows(run, gpu_doc),
            "files": list(run.get("files") or []),
        }
        for key, rows in content.items():
            if self.shown.get(key) == rows or key not in self.boxes:
                continue
            self.shown[key] = rows
            box = self.boxes[key]
            box.clear()
            with box:
                self._fill(key, rows)

    @staticmethod
    def _fill(key: str, rows: list[Any]) -> None:
        if key == "history":
            table(rows, ("time", "status", "reason"), "rp-hist")
        elif key == "params":
            if rows:
                table(rows, ("name", "value"), "rp-params lw-mono")
            else:
                ui.label("No hyperparameters found for this run.").classes("lw-note")
        elif key == "gpus":
            if rows:
                table(rows, ("GPU", "util", "memory", "user", "command"), "rp-gpus")
            else:
                ui.label("No GPU process of this run right now.").classes("lw-note")
        elif rows:
            for path in rows:
                ui.label(path).classes("lw-mono lw-v")
        else:
            ui.label("The runs collector has not listed this run's files.").classes("lw-note")
