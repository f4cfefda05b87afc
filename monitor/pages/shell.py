"""The frame of every drill-down page: one stylesheet, a header (back to the wall, the page's title,
the host, the LIVE state of the data) and a readable 404 page.

Reusable by any page under monitor/pages: `PageShell(context, "title")` builds the header inside
a `.lw-page` root and `shell.tick()` keeps the LIVE pill current (call it from the page's timer);
`not_found(context, what, detail)` is the answer for an unknown id.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi.responses import HTMLResponse
from nicegui import ui

from monitor.config import Config
from monitor.model.store import Store
from monitor.wall import header
from monitor.wall.cells import Cell, CellView

CSS = Path(__file__).with_name("pages.css")


@dataclass(frozen=True, slots=True)
class PageContext:
    """What every page needs: the shared store, the config, and when this process started."""

    store: Store
    config: Config
    started_at: float

    def live(self, now: float | None = None) -> tuple[Cell, Cell]:
        """The LIVE pill and the data age, by the wall's own rule."""
        now = time.time() if now is None else now
        pill, age, _stale = header.freshness(now, self.config, self.store.state("gpu"), self.store.state("system"),
                                             self.started_at)
        return pill, age


class PageShell:
    """One viewer's page frame. Text is set through labels only (never HTML)."""

    def __init__(self, context: PageContext, title: str, kind: str = "") -> None:
        self.context = context
        self.view = CellView()
        ui.page_title(f"{title} · {context.config.wall.title}")
        self.root = ui.element("div").classes(f"lw-page {kind}".strip())
        with self.root:
            with ui.element("div").classes("lw-hdr"):
                ui.link("← wall", "/").classes("lw-back")
                ui.label(title).classes("lw-title")
                ui.label(context.config.host_label).classes("lw-host")
                with ui.element("div").classes("lw-live"):
                    self.view.label("live", "pill")
                    self.view.label("age", "age")
            self.body = ui.element("div").classes("lw-body")
        self.tick()

    def tick(self) -> None:
        pill, age = self.context.live()
        self.view.apply({"live": pill, "age": age})


def not_found(context: PageContext, what: str, detail: str) -> HTMLResponse:
    """A small static page with status 404: what was not found, and the way back."""
    pill, _age = context.live()
    title = html.escape(context.config.wall.title)
    host = html.escape(context.config.host_label)
    body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Not found · {title}</title>
<style>{CSS.read_text(encoding="utf-8")}</style></head>
<body><div class="lw-page lw-404"><div class="lw-hdr"><a class="lw-back" href="/">← wall</a>
<span class="lw-title">Not found</span><span class="lw-host">{host}</span>
<div class="lw-live"><span class="pill {html.escape(pill.level)}">{html.escape(pill.text or "")}</span></div></div>
<div class="lw-body"><h1 class="lw-h">{html.escape(what)}</h1><p class="lw-note">{html.escape(detail)}</p>
<p class="lw-note"><a href="/runs">All runs</a> · <a href="/">The wall</a></p></div></div></body></html>"""
    return HTMLResponse(body, status_code=404)
