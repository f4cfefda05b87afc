"""The alert banner: the largest active alert across the top of the wall, hidden when none.

It overlays the top of the wall (position: fixed), so it never changes the layout or adds a
scrollbar. Alert texts come from outside (subjects, messages) and are shown as text.
"""

from __future__ import annotations

from typing import Any

from nicegui import ui

from monitor.store import Store
from monitor.wall import format as fmt
from monitor.wall.cells import Cell, CellView


def _age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s ago"
    if s < 3600:
        return f"{s // 60} min ago"
    return f"{s // 3600} h {s % 3600 // 60:02d} min ago"


def active_alerts(store: Store) -> list[dict[str, Any]]:
    state = store.state("alerts")
    doc = state[1] if state and isinstance(state[1], dict) else {}
    return [a for a in doc.get("active") or [] if isinstance(a, dict)]


def alert_cells(store: Store, now: float) -> dict[str, Cell]:
    active = active_alerts(store)
    if not active:
        return {"al": Cell(level="off"), "al.sev": Cell(""), "al.title": Cell(""), "al.subj": Cell(""),
                "al.age": Cell(""), "al.more": Cell("", level="off")}
    first = active[0]
    critical = first.get("severity") == "critical"
    raised = fmt.number(first.get("raised_at"))
    more = len(active) - 1
    title = fmt.text(first.get("title"), fmt.text(first.get("rule"), "alert"))
    subject = fmt.text(first.get("subject"), "")
    return {
        "al": Cell(level="crit" if critical else "warn"),
        "al.sev": Cell("CRITICAL" if critical else "WARNING"),
        "al.title": Cell(title),
        "al.subj": Cell("" if subject in title else subject),  # "GPU 0 hot" names its subject already
        "al.age": Cell(_age(now - raised) if raised is not None else ""),
        "al.more": Cell(f"+ {more} more alert{'s' if more > 1 else ''}", level="" if more > 0 else "off"),
    }


def build_banner(view: CellView) -> None:
    with view.bind("al", ui.element("div").classes("alert-banner off"), Cell(level="off")):
        view.label("al.sev", "al-sev")
        view.label("al.title", "al-title")
        view.label("al.subj", "al-subj")
        view.label("al.age", "al-age")
        view.label("al.more", "al-more")
