"""The event feed: collector errors, GPU lost/recovered and, later, run and alert events, in a
`ui.log` (every line is a text label, never HTML) capped at a fixed number of lines."""

from __future__ import annotations

from typing import NamedTuple

from nicegui import ui

from monitor.model.samples import Event
from monitor.wall import format as fmt

MAX_LINES = 40  # the panel shows ~10; a few more let it scroll smoothly, and the DOM stays bounded


class EventLine(NamedTuple):
    text: str
    classes: str


def event_line(event: Event) -> EventLine:
    level = event.level if event.level in ("info", "warning", "error") else "info"
    source, text = fmt.text(event.source, "-"), fmt.text(event.text, "")
    if not text.lower().startswith(source.lower()):
        text = f"{source}: {text}"
    return EventLine(f"{fmt.clock(event.time)}  {text}", f"ev {level}")


def build_events() -> ui.log:
    with ui.element("div").classes("panel events"):
        with ui.element("div").classes("p-head"):
            ui.label("Events").classes("p-title")
        return ui.log(max_lines=MAX_LINES).classes("ev-log")


def push(log: ui.log, lines: list[EventLine] | tuple[EventLine, ...]) -> None:
    for line in lines[-MAX_LINES:]:
        log.push(line.text, classes=line.classes)
