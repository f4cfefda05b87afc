"""`/runs`: every run the registry knows (finished and deleted ones too), newest update first.

Filters are URL query parameters (`status`, `user`, `root`, `name`), so a filtered list is a link;
the small form above the list is a plain HTML GET form: it only changes the URL. Each row: status,
name (a link to the run's page), step, main metric and its last value, and a sparkline of the main
metric (an SVG polyline of at most SPARK_POINTS points). The list is drawn at load; a reload shows
newer runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from nicegui import ui

from monitor.model.numbers import finite
from monitor.model.run_gpus import join_document
from monitor.model.run_registry import RunRegistry
from monitor.pages import run_data
from monitor.pages.run_info import STATUSES
from monitor.pages.shell import PageContext, PageShell
from monitor.wall import format as fmt
from monitor.wall.cells import SparkLine

SPARK_POINTS = 60
FILTERS = ("status", "user", "root", "name")
MAX_FILTER_CHARS = 200


def spark_values(registry: RunRegistry, run_id: str, metric: str | None) -> tuple[tuple[int, ...], float | None]:
    """(the main metric's points, at most SPARK_POINTS evenly picked, scaled to 0..100; its last value)."""
    arrays = registry.read_metric_arrays(run_id, metric) if metric else None
    if arrays is None:
        return (), None
    values = arrays[1][np.isfinite(arrays[1])]
    last = float(values[-1]) if len(values) else None
    if len(values) > SPARK_POINTS:
        values = values[np.linspace(0, len(values) - 1, SPARK_POINTS).astype(int)]
    if len(values) < 2:
        return (), last
    low, high = float(values.min()), float(values.max())
    span = high - low or 1.0
    return tuple(round(100 * (v - low) / span) for v in values.tolist()), last


def matches(run: dict[str, Any], users: set[str], filters: dict[str, str]) -> bool:
    if filters.get("status") and run.get("status") != filters["status"]:
        return False
    if filters.get("user") and not any(filters["user"].lower() in u.lower() for u in users):
        return False
    if filters.get("root") and filters["root"] not in str(run.get("root", "")):
        return False
    return not (filters.get("name") and filters["name"].lower() not in str(run.get("name", "")).lower())


def listed_runs(registry: RunRegistry, join_doc: dict[str, Any], filters: dict[str, str]) -> list[dict[str, Any]]:
    """Every run that passes the filters, most recently updated first, with its users."""
    rows = []
    for summary in registry.summaries():
        detail = registry.detail(summary["id"])
        if detail is None:
            continue
        users = run_data.run_users(detail["id"], join_doc)
        if matches(detail, users, filters):
            rows.append({**detail, "users": sorted(users)})
    return rows


def _input(name: str, value: str, label: str) -> None:
    with ui.element("label"):
        ui.label(label)
        field = ui.element("input").props(f"name={name} type=search")
        field._props["value"] = value  # an attribute (Vue escapes it), never markup


def _status_select(value: str) -> None:
    with ui.element("label"):
        ui.label("status")
        with ui.element("select").props("name=status"):
            for option in ("", *STATUSES):
                item = ui.element("option")
                item._props["value"] = option
                if option == value:
                    item._props["selected"] = True
                item._text = option or "any"


def build_runs_page(context: PageContext, filters: dict[str, str]) -> PageShell:
    shell = PageShell(context, "All runs", "lw-runs")
    registry = context.store.runs
    runs = listed_runs(registry, join_document(context.store), filters)
    with shell.body:
        with ui.element("form").classes("lw-section rl-form").props("method=get action=/runs"):
            _status_select(filters.get("status", ""))
            _input("user", filters.get("user", ""), "user")
            _input("root", filters.get("root", ""), "root")
            _input("name", filters.get("name", ""), "name")
            with ui.element("button").props("type=submit"):
                ui.label("Filter")
            ui.link("clear", "/runs")
        total = len(registry)
        ui.label(f"{len(runs)} of {total} runs" + (" (filtered)" if any(filters.values()) else "")
                 ).classes("lw-note rl-count")
        with ui.element("div").classes("lw-section"), ui.element("div").classes("lw-table rl-table"):
            for head, wide in (("status", False), ("run", False), ("step", False), ("main metric", True),
                               ("trend", True), ("updated", True)):
                ui.label(head).classes("lw-th" + (" rl-wide" if wide else ""))
            for run in runs:
                _row(registry, run)
    return shell


def _row(registry: RunRegistry, run: dict[str, Any]) -> None:
    status = fmt.text(run.get("status"), "unknown")
    ui.label(status.upper()).classes(f"lw-badge {status}")
    with ui.element("div").classes("rl-run"):
        ui.link(fmt.text(run.get("name"), run["id"]), f"/run/{run['id']}").classes("rl-name")
        if run.get("users"):
            ui.label(" · ".join(run["users"])).classes("lw-note")
    step = finite(run.get("step"))
    ui.label(fmt.NA if step is None else f"{step:.0f}").classes("rl-step")
    metric = run.get("main_metric")
    spark, latest = spark_values(registry, run["id"], metric)
    ui.label(f"{metric} {fmt.NA if latest is None else f'{latest:.4g}'}" if metric else "no metric yet"
             ).classes("rl-metric rl-wide")
    with ui.element("div").classes("rl-spark rl-wide"):
        SparkLine(spark)
    ui.label(run_data.when(run.get("updated") or run.get("started"))).classes("lw-note rl-wide")


def clean_filters(raw: dict[str, str | None]) -> dict[str, str]:
    return {k: (raw.get(k) or "").strip()[:MAX_FILTER_CHARS] for k in FILTERS if (raw.get(k) or "").strip()}
