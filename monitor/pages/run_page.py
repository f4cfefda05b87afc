"""`/run/{id}`: one run looked at closely, by one viewer.

Built once from the registry (every metric's chart downsampled to about its pixel width, see
series.py), then one `ui.timer` sends only what is new: the registry's change list names the runs
and metrics with new points, each chart reads its runs' points after its own cursors and extends
its traces (`extendTraces`), with this viewer's smoothing continued point by point. The figure is
re-sent only for this viewer's own actions (moving the smoothing slider) or when a metric was
rewritten (a resume) or grew past twice the drawn size (drawn again, downsampled). Zoom and hover
stay in the browser; nothing a viewer does reaches the store or another viewer.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from nicegui import background_tasks, ui
from nicegui.events import GenericEventArguments

from monitor.pages import run_data, run_info
from monitor.pages.run_charts import colour, metric_figure
from monitor.pages.series import CHART_BUCKETS, Drawn, Ema, clamp_weight, drawn, new_points
from monitor.pages.shell import PageContext, PageShell

DEFAULT_WEIGHT = 0.6
CHARTS_DRAWN_JS = """
return new Promise((resolve) => {
  const drawn = () => [...document.querySelectorAll(".lw-run .js-plotly-plot")].every((el) => el._fullLayout);
  const check = () => (drawn() ? resolve(true) : setTimeout(check, 50));
  check();
});
"""


@dataclass(slots=True)
class Chart:
    plot: ui.plotly
    cursors: list[int]
    emas: list[Ema | None]
    extended: int = 0  # points sent since the chart was last drawn
    hidden: list[bool] = field(default_factory=list)


def parse_weight(raw: str | None) -> float:
    try:
        return clamp_weight(float(raw)) if raw else DEFAULT_WEIGHT
    except ValueError:
        return DEFAULT_WEIGHT


class RunPage:
    def __init__(self, context: PageContext, run_id: str, compare: str | None, smooth: str | None) -> None:
        self.context = context
        self.registry = context.store.runs
        self.run_id = run_id
        self.compare, self.unknown = run_data.parse_compare(compare, run_id, self.registry)
        self.runs = [run_id, *self.compare]
        self.weight = parse_weight(smooth)
        self.reg_cursor = self.registry.cursor
        self.charts: dict[str, Chart] = {}
        self.groups: dict[str, ui.element] = {}
        self.group_boxes: dict[str, ui.element] = {}
        self.charts_ready = False
        self.probe = None
        detail = self.registry.detail(run_id) or {"id": run_id}
        self.shell = PageShell(context, f"Run {detail.get('name', run_id)}", "lw-run")
        self.view = self.shell.view
        self.sections = run_info.Sections(self.view)
        with self.shell.body:
            run_info.build_top(self.view)
            self.sections.build()
            self._build_compare(detail)
            self._build_controls()
            for group in run_data.GROUPS:
                with ui.element("div").classes(f"lw-section rp-group rp-{group}") as box:
                    ui.label(f"{group} metrics").classes("lw-sec-t")
                    self.groups[group] = ui.element("div").classes("rp-grid")
                self.group_boxes[group] = box
            for group, names in run_data.grouped(self.registry.metric_names(run_id) or []).items():
                for name in names:
                    self._add_chart(name, group)
            self._show_groups()
            self.sections.build_details()
        self._show(detail)
        self.timer = ui.timer(context.config.wall.flush_interval_s, self.tick, immediate=False)

    # -- building -----------------------------------------------------------------------------------
    def _build_compare(self, detail: dict) -> None:
        with ui.element("div").classes("lw-section rp-compare"):
            ui.label("Compare").classes("lw-sec-t")
            with ui.element("div").classes("rp-legend"):
                for k, rid in enumerate(self.runs):
                    other = self.registry.summary(rid) or {}
                    with ui.element("div").classes("rp-key"):
                        ui.element("span").classes("rp-swatch").style(f"background: {colour(k)}")
                        if k == 0:
                            ui.label(f"{other.get('name', rid)} (this run)")
                        else:
                            ui.link(str(other.get("name", rid)), f"/run/{rid}")
                            rest = [c for c in self.compare if c != rid]
                            ui.link("remove", run_data.compare_href(self.run_id, rest)).classes("rp-remove")
            if self.unknown:
                ui.label("not known, left out: " + ", ".join(self.unknown)).classes("lw-note rp-unknown")
            near = run_data.siblings(self.registry, detail)
            offered = [s for s in near if s["id"] not in self.compare]
            if offered and len(self.compare) < run_data.MAX_COMPARE:
                ui.label("Runs in the same directory:").classes("lw-note")
                with ui.element("div").classes("rp-links"):
                    for s in offered:
                        ui.link(f"+ {s['name']}", run_data.compare_href(self.run_id, [*self.compare, s["id"]]))
            elif not near:
                ui.label("No other run in this run's directory.").classes("lw-note")

    def _build_controls(self) -> None:
        with ui.element("div").classes("rp-controls"):
            self.smooth_label = ui.label(self._smooth_text()).classes("rp-smooth-t")
            slider = ui.slider(min=0.0, max=0.99, step=0.01, value=self.weight).classes("rp-smooth")
            slider.on("change", self._set_weight)
            ui.label("zoom: drag on a chart · double-click resets").classes("lw-note")

    def _smooth_text(self) -> str:
        return f"smoothing {self.weight:.2f}"

    def _add_chart(self, metric: str, group: str) -> None:
        drawn_runs = self._draw(metric)
        with self.groups[group], ui.element("div").classes("rp-chart"):
            ui.label(metric).classes("rp-chart-t")
            with ui.element("div").classes("rp-plot"):
                plot = ui.plotly(metric_figure(drawn_runs))
        self.charts[metric] = Chart(plot, [d.cursor if d else 0 for d in drawn_runs],
                                    [d.ema if d else None for d in drawn_runs])

    def _draw(self, metric: str) -> list[Drawn | None]:
        found = []
        for rid in self.runs:
            arrays = self.registry.read_metric_arrays(rid, metric)
            found.append(None if arrays is None else drawn(*arrays, self.weight))
        return found

    def _show_groups(self) -> None:
        for group, box in self.group_boxes.items():
            box.classes(add="off" if not list(self.groups[group]) else None,
                        remove="off" if list(self.groups[group]) else None)

    def _show(self, detail: dict) -> None:
        self.detail = detail
        if "path" in detail:
            self.view.apply(run_info.info_cells(detail))
        state = self.context.store.state("gpu")
        self.sections.show(detail, state[1] if state and isinstance(state[1], dict) else None)

    # -- streaming ----------------------------------------------------------------------------------
    def tick(self) -> None:
        self.shell.tick()
        if not self.shell.root.client.has_socket_connection:
            return  # the registry keeps the points; this page catches up when its browser is back
        if not self.charts_ready:
            if self.probe is None or self.probe.done():
                self.probe = background_tasks.create(self._wait_for_charts(), name="labwall run page ready")
            return
        changes = self.registry.changed_after(self.reg_cursor)
        self.reg_cursor = changes.cursor
        if self.run_id in changes.runs:
            detail = self.registry.detail(self.run_id)
            if detail is not None:
                self._show(detail)
            new = [m for m in changes.runs[self.run_id] if m not in self.charts]
            for metric in new:
                self._add_chart(metric, run_data.metric_group(metric))
            if new:
                self._show_groups()
        elif self.detail.get("gpus"):
            self._show(self.detail)  # the GPUs' utilisation moves every tick
        for metric, chart in self.charts.items():
            self._extend(metric, chart, changes.runs)

    def _extend(self, metric: str, chart: Chart, changed: dict[str, list[str]]) -> None:
        xs_all, ys_all, indices = [], [], []
        for k, rid in enumerate(self.runs):
            if metric not in changed.get(rid, ()):
                continue
            read = self.registry.read_metric_after(rid, metric, chart.cursors[k])
            if read is None:
                continue
            if read.reset or chart.emas[k] is None:
                return self._redraw(metric, chart)
            chart.cursors[k] = read.cursor
            xs, ys = new_points(read.points)
            if not xs:
                continue
            smooth = chart.emas[k].add(ys)  # type: ignore[union-attr]
            xs_all += [xs, xs]
            ys_all += [[float(f"{v:.5g}") for v in ys], smooth]
            indices += [2 * k, 2 * k + 1]
            chart.extended += len(xs)
        if chart.extended > 2 * CHART_BUCKETS:
            return self._redraw(metric, chart)  # drawn again, downsampled: the browser's copy stays small
        if indices:
            chart.plot.run_plot_method("extendTraces", {"x": xs_all, "y": ys_all}, indices)
        return None

    def _redraw(self, metric: str, chart: Chart) -> None:
        """This viewer's chart again from the registry (Plotly.restyle keeps the viewer's zoom)."""
        found = self._draw(metric)
        update: dict[str, list[list[float]]] = {"x": [], "y": []}
        for d in found:
            update["x"] += [d.x, d.sx] if d else [[], []]
            update["y"] += [d.raw, d.smooth] if d else [[], []]
        chart.plot.run_plot_method("restyle", update, list(range(2 * len(found))))
        chart.cursors = [d.cursor if d else 0 for d in found]
        chart.emas = [d.ema if d else None for d in found]
        chart.extended = 0

    def _set_weight(self, event: GenericEventArguments) -> None:
        """This viewer's smoothing (the slider was released): its charts are drawn again."""
        try:
            weight = clamp_weight(float(event.args))
        except (TypeError, ValueError):
            return
        if weight == self.weight:
            return
        self.weight = weight
        self.smooth_label.set_text(self._smooth_text())
        for metric, chart in self.charts.items():
            self._redraw(metric, chart)

    async def _wait_for_charts(self) -> None:
        with contextlib.suppress(TimeoutError):
            self.charts_ready = bool(await self.shell.root.client.run_javascript(CHARTS_DRAWN_JS, timeout=10.0))
        if self.charts_ready:
            for chart in self.charts.values():  # the browser has the points; a plot is only ever extended
                for trace in chart.plot.figure["data"]:
                    trace["x"], trace["y"] = [], []
