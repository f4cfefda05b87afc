"""History charts: which store series feed which chart, the figure a page starts from, and the new
points of one tick, ready for Plotly's `extendTraces`.

A chart is created once per page with the history already in the store; after that a tick sends
only the points added since the previous tick, and `maxPoints` trims every trace to the window, so
neither the wire nor the browser grows with the history length.
Charts never show outside text: trace names are fixed and hover is off (`staticPlot`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from nicegui import ui

from monitor.model.documents import GpuField
from monitor.model.numbers import finite
from monitor.model.samples import SeriesKey, label_value
from monitor.model.store import Store
from monitor.wall import theme

DAY_BUCKET_S = 60.0


@dataclass(frozen=True, slots=True)
class SeriesRef:
    """One trace of a chart: a store series, scaled (bytes used → % of total) on the way out."""

    key: SeriesKey
    scale: float = 1.0


@dataclass(frozen=True, slots=True)
class ChartPoints:
    """The new points of one chart: `{"x": [[...], ...], "y": [[...], ...]}` for `indices`."""

    update: dict[str, list[list[float]]]
    indices: list[int]

    @property
    def count(self) -> int:
        return sum(len(x) for x in self.update["x"])


@dataclass(frozen=True, slots=True)
class ChartWindow:
    """What the charts show: `span_s` of time, from raw points or from the 1-minute tier.

    x values are seconds since `epoch` (one per process, the same for every page): the axes are
    hidden, and 6-8 digits instead of 13 for epoch milliseconds is most of a tick's chart bytes."""

    span_s: float
    day_tier: bool
    epoch: float = 0.0

    @classmethod
    def from_config(cls, chart_window_s: float, history_window_s: float, day_tier_kept: bool,
                    epoch: float) -> ChartWindow:
        return cls(chart_window_s, day_tier_kept and chart_window_s > history_window_s, float(math.floor(epoch)))

    def max_points(self, interval_s: float) -> int:
        step = DAY_BUCKET_S if self.day_tier else interval_s
        return math.ceil(self.span_s / step) + 1


Refs = tuple[SeriesRef | None, ...]


def _by_label(store: Store, name: str, label: str) -> dict[str, SeriesKey]:
    return {
        value: key for key in store.keys(name) if key[0] == name and (value := label_value(key[1], label)) is not None
    }


def gpu_chart_refs(store: Store, gpus: list[dict[str, Any]]) -> dict[str, Refs]:
    """Chart "g<position>": trace 0 utilisation %, trace 1 memory used as % of the GPU's total."""
    util_by_uuid = _by_label(store, "gpu_utilization_percent", "uuid")
    mem_by_uuid = _by_label(store, "gpu_memory_used_bytes", "uuid")
    util_by_index = _by_label(store, "gpu_utilization_percent", "gpu")
    mem_by_index = _by_label(store, "gpu_memory_used_bytes", "gpu")
    refs: dict[str, Refs] = {}
    for position, gpu in enumerate(gpus):
        uuid, index = str(gpu.get(GpuField.UUID)), str(gpu.get(GpuField.INDEX))
        util = util_by_uuid.get(uuid) or util_by_index.get(index)
        mem = mem_by_uuid.get(uuid) or mem_by_index.get(index)
        total = finite(gpu.get(GpuField.MEMORY_TOTAL_BYTES))
        refs[f"g{position}"] = (
            SeriesRef(util) if util else None,
            SeriesRef(mem, 100.0 / total) if mem and total else None,
        )
    return refs


def host_chart_refs(store: Store) -> dict[str, Refs]:
    """Chart "host": trace 0 CPU %, trace 1 memory %."""
    cpu = [k for k in store.keys("host_cpu_percent") if k[0] == "host_cpu_percent"]
    mem = [k for k in store.keys("host_memory_percent") if k[0] == "host_memory_percent"]
    return {"host": (SeriesRef(cpu[0]) if cpu else None, SeriesRef(mem[0]) if mem else None)}


def _read(store: Store, ref: SeriesRef, cursor: int, window: ChartWindow) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    chunk = store.read_day_after(ref.key, cursor) if window.day_tier else store.read_after(ref.key, cursor)
    if chunk is None or not len(chunk):
        empty = np.zeros(0)
        return empty.astype(np.int64), empty, empty
    return chunk.seqs, chunk.times, chunk.values[:, 0] * ref.scale


def _compact(values: np.ndarray) -> list[float]:
    """One decimal (all a sparkline can show), and 93 rather than 93.0 on the wire."""
    return [int(v) if v.is_integer() else v for v in np.round(values, 1).tolist()]


def _xy(times: np.ndarray, values: np.ndarray, epoch: float) -> tuple[list[float], list[float]]:
    return _compact(times - epoch), _compact(values)


def new_points(store: Store, refs: Refs, after: int, upto: int, window: ChartWindow) -> ChartPoints | None:
    """Points with `after` < seq <= `upto` for each trace of one chart; None when there are none."""
    xs: list[list[float]] = []
    ys: list[list[float]] = []
    indices: list[int] = []
    for i, ref in enumerate(refs):
        if ref is None:
            continue
        seqs, times, values = _read(store, ref, after, window)
        keep = seqs <= upto
        if not keep.any():
            continue
        x, y = _xy(times[keep], values[keep], window.epoch)
        xs.append(x)
        ys.append(y)
        indices.append(i)
    return ChartPoints({"x": xs, "y": ys}, indices) if indices else None


def history(store: Store, refs: Refs, upto: int, now: float, window: ChartWindow) -> list[tuple[list, list]]:
    """Every trace's points within the window up to cursor `upto`: what a new page starts from.
    Minutes restored from durable storage come first, then a gap (a null point: the restart), then
    what this process collected; from raw points, the restored minutes older than the first one."""
    traces = []
    for ref in refs:
        if ref is None:
            traces.append(([], []))
            continue
        seqs, times, values = _read(store, ref, -1, window)
        keep = (seqs <= upto) & (times >= now - window.span_s)
        times, values = times[keep], values[keep]
        before = store.restored_until
        if before is None:
            traces.append(_xy(times, values, window.epoch))
            continue
        if window.day_tier:
            old = times <= before
            old_times, old_values, times, values = times[old], values[old], times[~old], values[~old]
        else:
            old_times, old_values = _restored_minutes(store, ref, now - window.span_s, before,
                                                      float(times[0]) if len(times) else now)
        traces.append(_with_gap(_xy(old_times, old_values, window.epoch), _xy(times, values, window.epoch)))
    return traces


def _restored_minutes(store: Store, ref: SeriesRef, since: float, before: float,
                      first_raw: float) -> tuple[np.ndarray, np.ndarray]:
    chunk = store.read_day_after(ref.key, -1)
    if chunk is None or not len(chunk):
        return np.zeros(0), np.zeros(0)
    keep = (chunk.times >= since) & (chunk.times <= before) & (chunk.times < first_raw)
    return chunk.times[keep], chunk.values[keep, 0] * ref.scale


def _with_gap(old: tuple[list, list], new: tuple[list, list]) -> tuple[list, list]:
    """`old` then `new`, with a null point between them so that no line is drawn across the restart."""
    (old_x, old_y), (new_x, new_y) = old, new
    if not old_x:
        return new
    gap_x = old_x[-1] + DAY_BUCKET_S if not new_x else (old_x[-1] + new_x[0]) / 2
    gap_x = min(gap_x, new_x[0]) if new_x else gap_x
    return [*old_x, round(gap_x, 1), *new_x], [*old_y, None, *new_y]


def span_text(span_s: float) -> str:
    """The chart caption: "10 min", "24 h", "90 s"."""
    if span_s >= 3600 and span_s % 3600 == 0:
        return f"{span_s / 3600:g} h"
    if span_s >= 60 and span_s % 60 == 0:
        return f"{span_s / 60:g} min"
    return f"{span_s:g} s"


def caption(kind: str, span_s: float) -> None:
    """A fixed key over the chart (the chart itself shows no text): series names and time span."""
    names = [style["name"] for style in theme.CHART_TRACES[kind]]
    with ui.element("div").classes("c-key"):
        ui.label(names[0]).classes("k-a")
        ui.label(names[1]).classes("k-b")
        ui.label(span_text(span_s)).classes("k-span")


def figure(kind: str, traces: list[tuple[list, list]]) -> dict[str, Any]:
    """A sparkline-style figure: no axes text, fixed 0-100 % scale, transparent on the tile."""
    styles = theme.CHART_TRACES[kind]
    data = []
    for (x, y), style in zip(traces, styles, strict=True):
        trace: dict[str, Any] = {
            "type": "scatter",
            "mode": "lines",
            "x": x,
            "y": y,
            "name": style["name"],
            "hoverinfo": "skip",
            "line": {"color": style["color"], "width": style["width"], "shape": "linear"},
        }
        if style.get("fill"):
            trace["fill"] = "tozeroy"
            trace["fillcolor"] = style["fill"]
        data.append(trace)
    return sparkline_figure(data, {
        "range": [0, 102],
        "fixedrange": True,
        "showticklabels": False,
        "tickvals": [25, 50, 75, 100],
        "gridcolor": theme.GRID,
        "zeroline": False,
    })


def sparkline_figure(data: list[dict[str, Any]], yaxis: dict[str, Any]) -> dict[str, Any]:
    """A static, transparent, axis-less Plotly figure for the wall's small charts."""
    return {
        "data": data,
        "layout": {
            "margin": {"l": 0, "r": 0, "t": 2, "b": 0},
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
            "showlegend": False,
            "autosize": True,
            "xaxis": {"type": "linear", "visible": False, "fixedrange": True},
            "yaxis": yaxis,
        },
        "config": {"staticPlot": True, "displayModeBar": False, "responsive": True},
    }
