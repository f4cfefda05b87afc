"""`/gpu/{host}/{index}`: one GPU's history, who held it, and its faults, for one viewer.

The span (`?span=1h|24h|all`) is the viewer's own, in the URL. Charts come from the durable
history (`read_history`: raw points for the last hour, the minute tier for a day, hours beyond);
with the 1 h span a `ui.timer` extends them with the store's new raw points only (`extendTraces`,
cursor per series), so a tick costs what is new. Longer spans are drawn once (their newest
point is a minute old anyway); the page says when.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nicegui import ui

from monitor.model.run_gpus import gpus_with_runs, join_document
from monitor.model.storage.history import UnknownSeries, read_history
from monitor.model.usage import UsageRecord
from monitor.pages.run_charts import colour
from monitor.pages.shell import PageContext, PageShell
from monitor.wall import format as fmt

SPANS = {"1h": 3600.0, "24h": 86400.0, "all": None}
GIB = 1024**3
# (title, [(series, trace word, scale)], unit)
CHARTS: tuple[tuple[str, tuple[tuple[str, str, float], ...], str], ...] = (
    ("Utilisation", (("gpu_utilization_percent", "GPU", 1.0), ("gpu_memory_utilization_percent", "memory bus", 1.0)),
     "%"),
    ("Memory", (("gpu_memory_used_bytes", "used", 1 / GIB), ("gpu_memory_total_bytes", "total", 1 / GIB)), "GiB"),
    ("Temperature", (("gpu_temperature_celsius", "core", 1.0),), "°C"),
    ("Power", (("gpu_power_watts", "draw", 1.0), ("gpu_power_limit_watts", "limit", 1.0)), "W"),
    ("Clocks", (("gpu_clock_sm_mhz", "SM", 1.0), ("gpu_clock_memory_mhz", "memory", 1.0)), "MHz"),
)


def span_seconds(span: str, retained_s: float) -> float:
    seconds = SPANS.get(span, SPANS["1h"])
    return retained_s if seconds is None else seconds


def retained_s(context: PageContext) -> float:
    """How far back history goes: the hour tier's retention with storage, else memory's 24 h tier."""
    storage = context.config.storage
    return storage.hour_retention_days * 86400.0 if storage.enabled and context.store.journal is not None else 86400.0


def history_path(context: PageContext) -> Path | None:
    journal = context.store.journal
    return journal.path if journal is not None else None  # type: ignore[attr-defined]


@dataclass(slots=True)
class Trace:
    series: str
    scale: float
    cursor: int


def chart_figure(traces: list[dict[str, Any]], unit: str) -> dict[str, Any]:
    axis = {"gridcolor": "rgba(148, 163, 184, 0.12)", "zeroline": False, "color": "#8d9bb0"}
    return {
        "data": traces,
        "layout": {"margin": {"l": 52, "r": 8, "t": 6, "b": 28}, "paper_bgcolor": "rgba(0,0,0,0)",
                   "plot_bgcolor": "rgba(0,0,0,0)", "showlegend": True, "autosize": True, "hovermode": "x",
                   "legend": {"orientation": "h", "y": 1.12, "font": {"size": 10}},
                   "font": {"color": "#8d9bb0", "size": 11}, "xaxis": {**axis, "type": "date"},
                   "yaxis": {**axis, "title": {"text": unit}}},
        "config": {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]},
    }


def holders(records: list[UsageRecord], run_names: dict[str, str]) -> dict[str, list[UsageRecord]]:
    """The records of each (user, run) that held the GPU, in order of first holding."""
    rows: dict[str, list[UsageRecord]] = {}
    for r in sorted(records, key=lambda r: r.start):
        run = run_names.get(r.run, r.run) if r.run else "no run joined"
        rows.setdefault(f"{r.user or 'unknown user'} · {run}", []).append(r)
    return rows


def holders_timeline(rows: dict[str, list[UsageRecord]]) -> dict[str, Any]:
    """One row per holder (#1, #2, ...: outside text never enters a chart, the names are labels beside
    it), a bar segment per minute it held the GPU."""
    traces = []
    for k, held in enumerate(rows.values()):
        traces.append({"type": "bar", "orientation": "h", "y": [f"#{k + 1}"] * len(held),
                       "x": [r.span_s * 1000 for r in held], "base": [r.start * 1000 for r in held],
                       "marker": {"color": colour(k)}, "name": f"#{k + 1}",
                       "hovertemplate": f"#{k + 1} %{{base|%H:%M}}<extra></extra>"})
    axis = {"gridcolor": "rgba(148, 163, 184, 0.12)", "color": "#8d9bb0"}
    return {"data": traces,
            "layout": {"margin": {"l": 36, "r": 8, "t": 6, "b": 28}, "barmode": "overlay", "showlegend": False,
                       "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)", "autosize": True,
                       "font": {"color": "#8d9bb0", "size": 11}, "xaxis": {**axis, "type": "date"},
                       "yaxis": {**axis, "autorange": "reversed"}, "height": 60 + 28 * max(1, len(rows))},
            "config": {"displaylogo": False, "responsive": True}}


def gpu_known(context: PageContext, index: int) -> bool:
    """A GPU the collector reports now, or one whose history the store holds."""
    state = context.store.state("gpu")
    gpus = state[1].get("gpus") if state and isinstance(state[1], dict) else None
    if any(g.get("index") == index for g in gpus or []):
        return True
    return any(dict(key[1]).get("gpu") == str(index) for key in context.store.keys("gpu_utilization_percent"))


class GpuPage:
    def __init__(self, context: PageContext, index: int, span: str) -> None:
        self.context = context
        self.index = index
        self.store = context.store
        self.span = span if span in SPANS else "1h"
        now = time.time()
        self.since = now - span_seconds(self.span, retained_s(context))
        self.labels = {"gpu": str(index)}
        self.live = self.span == "1h"
        gpu = self.gpu_entry() or {}
        self.shell = PageShell(context, f"GPU {index} · {gpu.get('name') or 'unknown'}", "lw-gpu")
        self.plots: list[tuple[ui.plotly, list[Trace]]] = []
        with self.shell.body:
            self._build_controls()
            with ui.element("div").classes("lw-section"):
                ui.label("now").classes("lw-sec-t")
                self.now_box = ui.element("div").classes("lw-kv")
            with ui.element("div").classes("gp-grid"):
                for title, series, unit in CHARTS:
                    self._chart(title, series, unit, now)
            self._holders(now)
            with ui.element("div").classes("lw-section"):
                ui.label("processes now").classes("lw-sec-t")
                self.proc_box = ui.element("div").classes("lw-table gp-procs")
            with ui.element("div").classes("lw-section"):
                ui.label("faults").classes("lw-sec-t")
                self.fault_box = ui.element("div").classes("lw-kv")
        self.refresh_now()
        ui.timer(context.config.wall.flush_interval_s if self.live else 10.0, self.tick)

    def gpu_entry(self) -> dict[str, Any] | None:
        """This GPU's reading with the run join's `run_id`/`run_name` on its processes."""
        state = self.store.state("gpu")
        gpus = state[1].get("gpus") if state and isinstance(state[1], dict) else None
        mine = [g for g in gpus or [] if g.get("index") == self.index]
        return gpus_with_runs(mine, join_document(self.store))[0] if mine else None

    def _build_controls(self) -> None:
        with ui.element("div").classes("rp-controls"):
            ui.label("span").classes("lw-k")
            for name, label in (("1h", "1 hour"), ("24h", "24 hours"), ("all", "retained")):
                link = ui.link(label, f"?span={name}").classes("gp-span")
                if name == self.span:
                    link.classes("gp-on")
            note = "live" if self.live else "drawn at " + time.strftime("%H:%M") + "; reload for newer"
            ui.label(note).classes("lw-note")

    def _chart(self, title: str, series: tuple[tuple[str, str, float], ...], unit: str, now: float) -> None:
        traces, kept = [], []
        for k, (name, word, scale) in enumerate(series):
            points, cursor = self._history(name, now)
            if not points:
                continue
            xs = [None if t is None else round(t * 1000) for t, _ in points]
            ys = [None if v is None else round(v * scale, 3) for _, v in points]
            traces.append({"type": "scatter", "mode": "lines", "x": xs, "y": ys, "name": word,
                           "line": {"color": colour(k), "width": 1.5}, "connectgaps": False})
            kept.append(Trace(name, scale, cursor))
        with ui.element("div").classes("lw-section gp-chart"):
            ui.label(title).classes("lw-sec-t")
            if not traces:
                ui.label("not reported by this GPU in this span").classes("lw-note")
                return
            plot = ui.plotly(chart_figure(traces, unit)).classes("gp-plot")
        self.plots.append((plot, kept))

    def _history(self, name: str, now: float) -> tuple[list[tuple[float | None, float | None]], int]:
        """The span's minute (or hour) means from the durable history, then the raw points in memory
        (newer than the last of those), a gap (None) where a restart left no data; and the store
        cursor after the raw points, where the live updates continue."""
        key = next((key for key in self.store.keys(name) if dict(key[1]).get("gpu") == str(self.index)), None)
        raw = self.store.read_after(key, -1) if key is not None else None
        first_raw = float(raw.times[0]) if raw is not None and len(raw) else math.inf
        try:
            tiers = read_history(self.store, history_path(self.context), name, self.labels, self.since, now)
            older = [(t, mean) for t, mean, _ in tiers.points if t + tiers.step_s <= first_raw]
            step = tiers.step_s
        except (UnknownSeries, ValueError):
            older, step = [], 60.0
        points: list[tuple[float | None, float | None]] = list(older)
        if raw is not None and len(raw):
            if older and first_raw - older[-1][0] > 2 * step + 60:
                points.append((None, None))  # a restart (or a stopped collector): drawn as a gap
            points += [(t, v) for t, v in zip(raw.times.tolist(), raw.values[:, 0].tolist(), strict=True)
                       if t >= self.since]
        return points, (raw.cursor if raw is not None and len(raw) else self.store.cursor)

    def _holders(self, now: float) -> None:
        records = [r for r in self.store.usage.records(self.since, now)
                   if r.gpu == str(self.index) and r.host == self.store.host]
        with ui.element("div").classes("lw-section"):
            ui.label("who held it (GPU usage records, by minute)").classes("lw-sec-t")
            if not records:
                ui.label("no process held this GPU in this span").classes("lw-note")
            else:
                names = {s["id"]: s["name"] for s in self.store.runs.summaries()}
                rows = holders(records, names)
                ui.plotly(holders_timeline(rows)).classes("gp-holders")
                with ui.element("div").classes("lw-table gp-holder-keys"):
                    for k, (label, held) in enumerate(rows.items()):
                        ui.label(f"#{k + 1}").style(f"color: {colour(k)}")
                        ui.label(label)
                        ui.label(f"{sum(r.gpu_s for r in held) / 3600:.2f} GPU-h")

    def refresh_now(self) -> None:
        gpu = self.gpu_entry() or {}
        self.now_box.clear()
        facts = (("status", gpu.get("status") or "unknown"),
                 ("utilisation", f"{fmt.percent(gpu.get('utilization_gpu_percent'))} %"),
                 ("memory", f"{fmt.gib(gpu.get('memory_used_bytes'))} / {fmt.gib(gpu.get('memory_total_bytes'))} GiB"),
                 ("temperature", fmt.celsius(gpu.get("temperature_celsius"))),
                 ("power", fmt.power(gpu.get("power_draw_watts"), gpu.get("power_limit_watts"))),
                 ("P-state", str(gpu.get("pstate") if gpu.get("pstate") is not None else "n/a")),
                 ("uuid", gpu.get("uuid") or "n/a"))
        with self.now_box:
            for key, value in facts:
                ui.label(key).classes("lw-k")
                ui.label(value).classes("lw-v")
        self.proc_box.clear()
        with self.proc_box:
            for head in ("pid", "user", "run", "memory", "command"):
                ui.label(head).classes("lw-th")
            for p in gpu.get("processes") or []:
                ui.label(str(p.get("pid"))).classes("lw-mono")
                ui.label(p.get("user") or "unknown")
                ui.label(p.get("run_name") or "unknown run")
                ui.label(f"{fmt.gib(p.get('gpu_memory_bytes'))} GiB")
                ui.label(p.get("command") or "").classes("lw-mono")
        self.fault_box.clear()
        with self.fault_box:
            ui.label("throttle reasons").classes("lw-k")
            ui.label(", ".join(gpu.get("throttle_reasons") or []) or "none").classes("lw-v")
            ui.label("XID errors").classes("lw-k")
            xids = gpu.get("xid_errors") or []
            ui.label("; ".join(_xid_text(x) for x in xids) or "none since labwall started").classes("lw-v")
            if gpu.get("lost_reason"):
                ui.label("lost").classes("lw-k")
                ui.label(str(gpu["lost_reason"])).classes("lw-v")

    def tick(self) -> None:
        self.shell.tick()
        self.refresh_now()
        if not self.live:
            return
        for plot, traces in self.plots:
            xs, ys, indices = [], [], []
            for k, trace in enumerate(traces):
                key = next((key for key in self.store.keys(trace.series)
                            if dict(key[1]).get("gpu") == str(self.index)), None)
                chunk = self.store.read_after(key, trace.cursor) if key is not None else None
                if chunk is None or not len(chunk):
                    continue
                trace.cursor = chunk.cursor
                xs.append([round(t * 1000) for t in chunk.times.tolist()])
                ys.append([round(v * trace.scale, 3) for v in chunk.values[:, 0].tolist()])
                indices.append(k)
            if indices:
                plot.run_plot_method("extendTraces", {"x": xs, "y": ys}, indices, 4000)


def _xid_text(xid: Any) -> str:
    if isinstance(xid, dict):
        when = time.strftime("%m-%d %H:%M", time.localtime(xid.get("time") or 0))
        return f"{when} XID {xid.get('code')} {xid.get('meaning') or ''}".strip()
    return str(xid)
