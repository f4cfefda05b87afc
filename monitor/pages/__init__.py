"""The read-only drill-down pages: `/run/{id}`, `/runs`, `/gpu/{host}/{index}`, `/usage` (and the shared
page frame, shell.py).

Views of the shared store like the wall: they read the model and never write it; every route is
GET; a viewer's controls (zoom, smoothing, filters) stay in its browser, its URL or its own page.
"""

from __future__ import annotations

import time

from fastapi import Response
from nicegui import ui

from monitor.app import Monitor
from monitor.model.run_registry import valid_run_id
from monitor.pages.gpu_page import GpuPage, gpu_known
from monitor.pages.run_page import RunPage
from monitor.pages.runs_list import build_runs_page, clean_filters
from monitor.pages.shell import CSS, PageContext, PageShell, not_found
from monitor.pages.usage_page import UsagePage
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
    def gpu_page(host: str, index: str, span: str = "1h") -> Response | None:
        if host != monitor.config.host_label or not index.isdigit() or not gpu_known(context, int(index)):
            where = "this server" if host == monitor.config.host_label else f"host {host[:80]!r}"
            return not_found(context, "No such GPU",
                             f"labwall knows no GPU {index[:20]!r} on {where}: pages show this server's GPUs "
                             "(other hosts' history lives in their own wall or in Prometheus).")
        GpuPage(context, int(index), span)
        return None

    @ui.page("/usage", title=monitor.config.wall.title)
    def usage_page(span: str = "week") -> None:
        UsagePage(context, span)

    return context
