"""The read-only drill-down pages: `/run/{id}` and `/runs` (and the shared page frame, shell.py).

Views of the shared store like the wall: they read the model and never write it; every route is
GET; a viewer's controls (zoom, smoothing, filters) stay in its browser, its URL or its own page.
"""

from __future__ import annotations

import time

from fastapi import Response
from nicegui import ui

from monitor.app import Monitor
from monitor.model.run_registry import valid_run_id
from monitor.pages.run_page import RunPage
from monitor.pages.runs_list import build_runs_page, clean_filters
from monitor.pages.shell import CSS, PageContext, PageShell, not_found
from monitor.wall.gpu_tiles import gpu_href

__all__ = ["PageContext", "PageShell", "gpu_href", "not_found", "register_pages"]


def register_pages(monitor: Monitor) -> PageContext:
    context = PageContext(monitor.store, monitor.config, time.time())
    ui.add_css(CSS, shared=True)
    registry = monitor.store.runs

    @ui.page("/run/{run_id}", title=monitor.config.wall.title)
    def run_page(run_id: str, compare: str = "", smooth: str = "") -> Response | None:
        if not valid_run_id(run_id) or registry.get(run_id) is None:
            return not_found(context, "No such run",
                             f"labwall knows no run with the id {run_id[:80]!r}: it may have been deleted and "
                             "forgotten, or the link is mistyped.")
        RunPage(context, run_id, compare, smooth)
        return None

    @ui.page("/runs", title=monitor.config.wall.title)
    def runs_page(status: str = "", user: str = "", root: str = "", name: str = "") -> None:
        build_runs_page(context, clean_filters({"status": status, "user": user, "root": root, "name": name}))

    @ui.page("/gpu/{host}/{index}", title=monitor.config.wall.title)
    def gpu_page(host: str, index: str) -> Response:
        # the GPU page comes later; until then its links from the wall answer a readable 404
        return not_found(context, "No GPU page yet", f"There is no page for GPU {index[:20]!r} of {host[:80]!r} yet.")

    return context
