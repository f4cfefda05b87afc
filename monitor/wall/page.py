"""One viewer's wall: built from the latest shared frame, then fed by one `ui.timer`.

Per tick a page pushes only what changed: the cells the frame marks as changed, the new chart
points of every chart in one message (chart_points.js hands them to Plotly's `extendTraces`,
trimmed to the window by `maxPoints`, once they move a line by a pixel) and new event lines.
The page has no inputs and registers no event handlers, so nothing a browser sends can reach the
store; the store is only ever written by the collectors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path

from nicegui import background_tasks, ui

from monitor.config import Config
from monitor.wall import alert_banner, charts, event_feed, gpu_tiles, header, host_panel, overview, runs_panel
from monitor.wall.cells import CellView
from monitor.wall.charts import ChartPoints
from monitor.wall.feed import Frame, WallFeed
from monitor.wall.watchdog import watchdog_script

MIN_TICK_S = 0.05
CHART_POINTS_JS = (Path(__file__).parent / "chart_points.js").read_text()
CHARTS_DRAWN_JS = """
return new Promise((resolve) => {
  const drawn = () => [...document.querySelectorAll(".wall .js-plotly-plot")].every((el) => el._fullLayout);
  const check = () => (drawn() ? resolve(true) : setTimeout(check, 50));
  check();
});
"""


class WallPage:
    """The elements of one browser's wall and the timer that keeps them current."""

    def __init__(self, feed: WallFeed, config: Config) -> None:
        self.feed = feed
        self.config = config
        self.view = CellView()
        self.plots: dict[str, ui.plotly] = {}
        self.run_slots: list[ui.element] = []  # the chart holder of each run card
        self.run_plots: dict[int, ui.plotly] = {}
        self.run_shown: list[tuple[str, int]] = []  # (run id, chart generation) each card shows
        self.root = ui.element("div").classes("wall")
        self.log: ui.element | None = None
        self.frame_number = 0
        self.cursor = 0
        self.event_cursor = 0
        self.layout: tuple = ()
        self.interval = config.wall.flush_interval_s
        self.last_tick = 0.0
        self.due = 0.0  # the instant this page's next tick is aimed at
        self.probe: asyncio.Task | None = None
        self.charts_ready = False
        self.outgoing: list[list] = []  # this tick's chart points: one labwallCharts.push for all charts
        self.build(feed.latest())
        self.timer = ui.timer(self.interval, self.tick, immediate=False)
        ui.add_body_html(watchdog_script(config.wall.flush_interval_s, config.wall.stale_after_intervals))
        ui.add_body_html(f"<script>{CHART_POINTS_JS}</script>")

    # -- building -----------------------------------------------------------------------------------
    def build(self, frame: Frame) -> None:
        """(Re)create the element tree from `frame`, charts included with their history."""
        self.root.clear()
        self.view.clear()
        self.plots.clear()
        self.view.bind("wall", self.root)
        mode, count, cores, hosts = frame.layout
        with self.root:
            header.build_header(self.view, self.config)
            alert_banner.build_banner(self.view)
            with ui.element("div").classes("main" if hosts is None else "main multi"):
                if hosts is None:
                    self._gpu_area(frame, mode, count)
                else:  # the other hosts' rows, above this server's GPU tiles or instead of them
                    with ui.element("div").classes("left" if mode != "overview" else "left full"):
                        overview.build_overview(self.view, *hosts)
                        if mode != "overview":
                            self._gpu_area(frame, mode, count, band_rows=hosts[0])
                with ui.element("div").classes("side"):
                    host_panel.build_host(self.view, self.config, cores, lambda: self._chart(frame, "host", "host"))
                    self.run_slots = runs_panel.build_runs(self.config, self.view)
                    self.log = event_feed.build_events()
        self.view.apply(frame.cells)
        self.run_plots.clear()
        self.run_shown = [("", 0)] * len(self.run_slots)
        self._runs(frame, None)
        recent = self.feed.store.events.read_after(max(0, frame.event_cursor - event_feed.MAX_LINES))
        event_feed.push(self.log, [event_feed.event_line(e) for e in recent if e.seq <= frame.event_cursor])
        self.frame_number, self.cursor, self.event_cursor = frame.number, frame.cursor, frame.event_cursor
        self.layout = frame.layout
        self.charts_ready = False  # Plotly loads lazily; points sent before it has drawn would be lost

    def _gpu_area(self, frame: Frame, mode: str, count: int, band_rows: int = 0) -> None:
        cols, rows = gpu_tiles.grid_shape(count)
        # under a band of more than 4 host rows the tiles lose their charts to stay readable
        dense = rows > 2 or (band_rows > 4 and count > 2)
        density = "few" if count <= 2 and band_rows <= 2 else "dense" if dense else ""
        with ui.element("div").classes(f"gpus {density}").style(f"--cols: {cols}; --rows: {rows}"):
            if mode == "tiles":
                for p in range(count):
                    gpu_tiles.build_tile(self.view, p, lambda p=p: self._chart(frame, f"g{p}", "gpu"),
                                         href=gpu_tiles.gpu_href(self.config.host_label, p))
            else:
                gpu_tiles.build_notice(self.view)

    def _chart(self, frame: Frame, chart: str, kind: str) -> None:
        refs = frame.charts.get(chart, (None, None))
        traces = charts.history(self.feed.store, refs, frame.cursor, frame.made_at, self.feed.window)
        charts.caption(kind, self.feed.window.span_s)
        with ui.element("div").classes("c-plot"):
            self.plots[chart] = ui.plotly(charts.figure(kind, traces))

    # -- streaming ----------------------------------------------------------------------------------
    def tick(self) -> None:
        started = time.time()
        client = self.root.client
        if not client.has_socket_connection:
            self.last_tick = 0.0
            return  # nothing queues up while the browser is away; it catches up when it is back
        if not self.charts_ready:
            self.last_tick = 0.0
            if self.probe is None or self.probe.done():
                self.probe = background_tasks.create(self._wait_for_charts(), name="labwall charts ready")
            return
        frame = self.feed.latest()
        self.feed.tick_stats.note(started - self.last_tick if self.last_tick else None,
                                  max(0.0, started - self.due) if self.due else 0.0, self.interval)
        self.last_tick = started
        if frame.number != self.frame_number:
            if frame.layout != self.layout:
                self.build(frame)
            else:
                self.advance(frame)
            self._send_points()
        self._aim(frame, started)

    def _send_points(self) -> None:
        """One message a tick for every chart's new points; the browser decides when each chart redraws
        (chart_points.js: once the held points move its line by a device pixel)."""
        if self.outgoing:
            payload = json.dumps(self.outgoing, separators=(",", ":"))
            self.outgoing = []
            self.root.client.run_javascript(f"labwallCharts.push({payload})")

    async def _wait_for_charts(self) -> None:
        """Until every chart has drawn once, a page only shows what it was built with."""
        with contextlib.suppress(TimeoutError):
            self.charts_ready = bool(await self.root.client.run_javascript(CHARTS_DRAWN_JS, timeout=10.0))
        if self.charts_ready:
            self._forget_history()

    def _forget_history(self) -> None:
        """The browser has the history now, and a plot is never re-sent (only extended): drop this
        page's copy of the points, which would otherwise cost every open page ~1 MB for its lifetime."""
        for plot in self.plots.values():
            for trace in plot.figure["data"]:
                trace["x"], trace["y"] = [], []

    def advance(self, frame: Frame) -> None:
        chain = self.feed.since(self.frame_number)
        if chain and chain[0].base == self.cursor and chain[0].event_base == self.event_cursor:
            for f in chain:  # shared: points and lines computed once for all viewers
                for chart, points in f.points.items():
                    self._extend(chart, points)
                if f.events:
                    event_feed.push(self.log, f.events)
            self.view.apply(frame.cells, frame.changed if len(chain) == 1 else None)
            self._runs(frame, chain)
        else:  # this page fell out of step: fetch its own gap from the store
            for chart, refs in frame.charts.items():
                points = charts.new_points(self.feed.store, refs, self.cursor, frame.cursor, self.feed.window)
                if points is not None:
                    self._extend(chart, points)
            missed = self.feed.store.events.read_after(self.event_cursor)
            lines = [event_feed.event_line(e) for e in missed if e.seq <= frame.event_cursor]
            event_feed.push(self.log, lines)
            self.view.apply(frame.cells)
            self._runs(frame, None)
        self.frame_number, self.cursor, self.event_cursor = frame.number, frame.cursor, frame.event_cursor

    def _extend(self, chart: str, points: ChartPoints) -> None:
        plot = self.plots.get(chart)
        if plot is not None:
            self.outgoing.append([plot.id, points.update["x"], points.update["y"], points.indices,
                                  self.feed.max_points(chart)])

    def _runs(self, frame: Frame, chain: list[Frame] | None) -> None:
        """Run cards' charts: extend with the chain's new points (shared, computed once per tick);
        a card whose run or chart generation changed, or a page out of step, redraws that chart from
        the feed's last points (and is extended from the next tick on)."""
        for i, run_id in enumerate(frame.run_slots[:len(self.run_slots)]):
            gen = self.feed.runs.gen(run_id) if run_id else 0
            if chain is None or self.run_shown[i] != (run_id, gen):
                self._run_chart(i, run_id, gen)
                continue
            plot = self.run_plots.get(i)
            if plot is None:
                continue
            for f in chain:
                found = f.run_points.get(run_id)
                if found is not None and found.gen == gen and found.x:
                    self.outgoing.append([plot.id, [found.x, found.x], [found.raw, found.ema], [0, 1],
                                          runs_panel.MAX_POINTS])

    def _run_chart(self, i: int, run_id: str, gen: int) -> None:
        card = self.view.elements.get(f"r{i}")
        if card is not None:  # this server's runs have a page; another host's have none here
            runs_panel.set_card_link(card, run_id if run_id and self.feed.store.runs.get(run_id) else None)
        slot = self.run_slots[i]
        slot.clear()
        self.run_plots.pop(i, None)
        if run_id:
            with slot:
                self.run_plots[i] = ui.plotly(runs_panel.run_figure(self.feed.runs.history(run_id)))
        self.run_shown[i] = (run_id, gen)

    def _aim(self, frame: Frame, started: float) -> None:
        """Phase-lock this page's timer to the shared tick, so all pages share one frame per tick."""
        now = time.time()
        target = frame.next_tick
        while target - now < MIN_TICK_S:
            target += self.interval
        # ui.timer sleeps `interval - (time the callback took)`; add that time back
        self.timer.interval = (target - now) + (now - started)
        self.due = target


def register_page(feed: WallFeed, config: Config) -> None:
    @ui.page("/", title=config.wall.title)
    def wall() -> None:
        WallPage(feed, config)
