"""`/usage`: GPU-hours by user, by run and by GPU over the last day, week or retained period,
stacked by day (by hour for one day), with the idle share highlighted.

The numbers come from the same `usage_report` as `/api/usage` and the wall's strip, so the three
always agree. Usage records close once a minute: the page is drawn once, says when, and costs
nothing per tick (a reload draws it anew).
"""

from __future__ import annotations

import time
from typing import Any

from nicegui import ui

from monitor.pages.gpu_page import retained_s
from monitor.pages.run_charts import colour
from monitor.pages.shell import PageContext, PageShell
from monitor.usage.report import usage_report

SPANS = {"day": 86400.0, "week": 7 * 86400.0, "all": None}
HIGH_IDLE = 0.5  # the wall's strip marks the same share
TOP = 12  # rows drawn per chart; the table lists every row


def idle_share(row: dict[str, Any]) -> float | None:
    return row["idle_gpu_hours"] / row["gpu_hours"] if row.get("gpu_hours") else None


def stacked_figure(report: dict[str, Any]) -> dict[str, Any]:
    bucket_ms = 3600_000 if report["bucket"] == "hour" else 86400_000
    traces = []
    for k, row in enumerate(report["rows"][:TOP]):
        traces.append({"type": "bar", "x": [t * 1000 + bucket_ms / 2 for t, _ in row["buckets"]],
                       "y": [h for _, h in row["buckets"]], "name": f"#{k + 1}",
                       "marker": {"color": colour(k)},
                       "hovertemplate": f"%{{y:.2f}} GPU-h<extra>#{k + 1}</extra>"})
    axis = {"gridcolor": "rgba(148, 163, 184, 0.12)", "zeroline": False, "color": "#8d9bb0"}
    return {"data": traces,
            "layout": {"barmode": "stack", "margin": {"l": 48, "r": 8, "t": 6, "b": 28}, "showlegend": False,
                       "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)", "autosize": True,
                       "font": {"color": "#8d9bb0", "size": 11}, "xaxis": {**axis, "type": "date"},
                       "yaxis": {**axis, "title": {"text": "GPU-hours"}}},
            "config": {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}}


def hours(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:,.0f}"


class UsagePage:
    def __init__(self, context: PageContext, span: str) -> None:
        self.context = context
        self.span = span if span in SPANS else "week"
        now = time.time()
        width = SPANS[self.span]
        since = now - (retained_s(context) if width is None else width)
        bucket = "hour" if self.span == "day" else "day"
        store = context.store
        names = {s["id"]: s["name"] for s in store.runs.summaries()}
        self.shell = PageShell(context, "GPU usage", "lw-usage")
        with self.shell.body:
            with ui.element("div").classes("rp-controls"):
                ui.label("span").classes("lw-k")
                for name, label in (("day", "last day"), ("week", "last week"), ("all", "retained")):
                    link = ui.link(label, f"?span={name}").classes("gp-span")
                    if name == self.span:
                        link.classes("gp-on")
                ui.label(f"as of {time.strftime('%H:%M')}; reload for newer · the same numbers as "
                         f"/api/usage?since={since:.0f}&until={now:.0f}").classes("lw-note")
            for by, title in (("user", "by user"), ("run", "by run"), ("gpu", "by GPU")):
                report = usage_report(store.usage, by, since, now, bucket, names)  # type: ignore[arg-type]
                self._section(title, by, report, names)

    def _section(self, title: str, by: str, report: dict[str, Any], names: dict[str, str]) -> None:
        total = report["total"]
        with ui.element("div").classes(f"lw-section us-{by}"):
            ui.label(f"GPU-hours {title}").classes("lw-sec-t")
            ui.label(f"total {hours(total['gpu_hours'])} GPU-h · idle {hours(total['idle_gpu_hours'])} · "
                     f"{total['energy_kwh']:.1f} kWh").classes("lw-note us-total")
            if not report["rows"]:
                ui.label("no GPU was held in this span").classes("lw-note")
                return
            ui.plotly(stacked_figure(report)).classes("us-plot")
            with ui.element("div").classes("lw-table us-table"):
                for head in ("#", title.removeprefix("by "), "GPU-h", "idle GPU-h", "idle share", "busy GPU-h", "kWh"):
                    ui.label(head).classes("lw-th")
                for k, row in enumerate(report["rows"]):
                    share = idle_share(row)
                    key = row["key"] or ("unknown user" if by == "user" else "no run")
                    ui.label(f"#{k + 1}").style(f"color: {colour(k)}" if k < TOP else "")
                    if by == "run" and row["key"] in names:
                        ui.link(row.get("name") or key, f"/run/{row['key']}")
                    elif by == "gpu":
                        ui.link(key, f"/gpu/{row.get('host')}/{row.get('gpu')}")
                    else:
                        ui.label(key)
                    ui.label(hours(row["gpu_hours"]))
                    ui.label(hours(row["idle_gpu_hours"]))
                    mark = ui.label("n/a" if share is None else f"{share:.0%}")
                    if share is not None and share >= HIGH_IDLE:
                        mark.classes("us-idle")
                    ui.label(hours(row["busy_gpu_hours"]))
                    ui.label(f"{row['energy_kwh']:.2f}")
