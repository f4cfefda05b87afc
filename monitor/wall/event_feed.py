"""The event feed: collector errors, GPU lost/recovered and, later, run and alert events, as text
labels (never HTML) in a plain box that shows the newest lines at its bottom, capped at a fixed
number of lines. Not a `ui.log`: its scroll area re-scrolls (and re-lays out) on every update of the
page, a cost paid each tick on a kiosk for a box nobody scrolls."""

from __future__ import annotations

from typing import NamedTuple

from nicegui import ui

from monitor.model.samples import Event
from monitor.wall import format as fmt

MAX_LINES = 40  # the panel shows ~10; the DOM stays bounded


class EventLine(NamedTuple):
    text: str
    classes: str


def event_line(event: Event) -> EventLine:
    level = event.level if event.level in ("info", "warning", "error") else "info"
    source, text = fmt.text(event.source, "-"), fmt.text(event.text, "")
    if not text.lower().startswith(source.lower()):
        text = f"{source}: {text}"
    return EventLine(f"{fmt.clock(event.time)}  {text}", f"ev {level}")


def build_events() -> ui.element:
    with ui.element("div").classes("panel events"):
        with ui.element("div").classes("p-head"):
            ui.label("Events").classes("p-title")
        with ui.element("div").classes("ev-log"):
            return ui.element("div").classes("ev-lines")


def push(log: ui.element, lines: list[EventLine] | tuple[EventLine, ...]) -> None:
    """Append `lines` (oldest first), then drop the oldest beyond MAX_LINES."""
    if not lines:
        return
    with log:
        for line in lines[-MAX_LINES:]:
            ui.label(line.text).classes(line.classes)
    extra = len(log.default_slot.children) - MAX_LINES
    for old in list(log.default_slot.children[:max(0, extra)]):
        log.remove(old)
