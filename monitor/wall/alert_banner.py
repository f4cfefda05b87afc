"""The alert banner: the active alerts across the top of the wall, largest first, hidden when none.

The largest (critical before warning, then the longest raised) fills the banner; the next ones are
named on a smaller line below it, and the rest counted. It overlays the top of the wall (position:
fixed), so it never changes the layout or adds a scrollbar. Alert texts come from outside (subjects,
messages) and are shown as text.
"""

from __future__ import annotations

from typing import Any

from nicegui import ui

from monitor.model.documents import Source, latest
from monitor.model.numbers import finite
from monitor.model.store import Store
from monitor.wall import format as fmt
from monitor.wall.cells import Cell, CellView


def active_alerts(store: Store) -> list[dict[str, Any]]:
    doc = latest(store, Source.ALERTS)
    return [a for a in doc.get("active") or [] if isinstance(a, dict)]


OTHERS_SHOWN = 4  # alerts named under the largest one; more are counted


def _off_cells() -> dict[str, Cell]:
    cells = {"al": Cell(level="off"), "al.sev": Cell(""), "al.title": Cell(""), "al.subj": Cell(""),
             "al.age": Cell(""), "al.others": Cell(level="off"), "al.more": Cell("", level="off")}
    cells.update({f"al.o{k}": Cell("", level="off") for k in range(OTHERS_SHOWN)})
    return cells


def _title(alert: dict[str, Any]) -> str:
    return fmt.text(alert.get("title"), fmt.text(alert.get("rule"), "alert"))


def alert_cells(store: Store, now: float) -> dict[str, Cell]:
    active = active_alerts(store)
    cells = _off_cells()
    if not active:
        return cells
    first, others = active[0], active[1:]
    critical = first.get("severity") == "critical"
    raised = finite(first.get("raised_at"))
    title = _title(first)
    subject = fmt.text(first.get("subject"), "")
    cells.update({
        "al": Cell(level="crit" if critical else "warn"),
        "al.sev": Cell("CRITICAL" if critical else "WARNING"),
        "al.title": Cell(title),
        "al.subj": Cell("" if subject in title else subject),  # "GPU 0 hot" names its subject already
        "al.age": Cell(fmt.ago(now - raised) if raised is not None else ""),
        "al.others": Cell(level="" if others else "off"),
    })  # fmt: skip
    for k, alert in enumerate(others[:OTHERS_SHOWN]):
        cells[f"al.o{k}"] = Cell(_title(alert), level="crit" if alert.get("severity") == "critical" else "warn")
    hidden = len(others) - OTHERS_SHOWN
    if hidden > 0:
        cells["al.more"] = Cell(f"+ {hidden} more alert{'s' if hidden > 1 else ''}")
    return cells


def build_banner(view: CellView) -> None:
    with view.bind("al", ui.element("div").classes("alert-banner off"), Cell(level="off")):
        view.label("al.sev", "al-sev")
        with ui.element("div").classes("al-main"):
            with ui.element("div").classes("al-line"):
                view.label("al.title", "al-title")
                view.label("al.subj", "al-subj")
            with view.bind("al.others", ui.element("div").classes("al-others off"), Cell(level="off")):
                for k in range(OTHERS_SHOWN):
                    view.label(f"al.o{k}", "al-other off", Cell("", level="off"))
                view.label("al.more", "al-more off", Cell("", level="off"))
        view.label("al.age", "al-age")
