"""One viewer's wall: built from the latest shared frame, then fed by one `ui.timer`.

Per tick a page pushes only what changed: the cells the frame marks as changed, the new chart
points through Plotly's `extendTraces` (trimmed to the window by `maxPoints`) and new event lines.
The page has no inputs and registers no event handlers, so nothing a browser sends can reach the
store; the store is only ever written by the collectors.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from nicegui import background_tasks, ui

from monitor.config import Config
from monitor.wall import charts, event_feed, gpu_tiles, header, host_panel, runs_panel
from monitor.wall.cells import CellView
from monitor.wall.charts import ChartPoints
from monitor.wall.feed import Frame, WallFeed
from monitor.wall.watchdog import watchdog_script

MIN_TICK_S = 0.05
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
        self.root = ui.element("div").classes("wall")
        self.log: ui.log | None = None
        self.frame_number = 0
        self.cursor = 0
        self.event_cursor = 0
        self.layout: tuple = ()
        self.interval = config.wall.flush_interval_s
        self.last_tick = 0.0
        self.due = 0.0  # the instant this page's next tick is aimed at
        self.probe: asyncio.Task | None = None
        self.charts_ready = False
        self.build(feed.latest())
        self.timer = ui.timer(self.interval, self.tick, immediate=False)
        ui.add_body_html(watchdog_script(config.wall.flush_interval_s, config.wall.stale_after_intervals))

    # -- building -----------------------------------------------------------------------------------
    def build(self, frame: Frame) -> None:
        """(Re)create the element tree from `frame`, charts included with their history."""
        self.root.clear()
        self.view.clear()
        self.plots.clear()
        self.view.bind("wall", self.root)
        mode, count, cores = frame.layout
        with self.root:
            header.build_header(self.view, self.config)
            with ui.element("div").classes("main"):
                cols, rows = gpu_tiles.grid_shape(count)
                density = "few" if count <= 2 else "dense" if rows > 2 else ""
                with ui.element("div").classes(f"gpus {density}").style(f"--cols: {cols}; --rows: {rows}"):
                    if mode == "tiles":
                        for p in range(count):
                            gpu_tiles.build_tile(self.view, p, lambda p=p: self._chart(frame, f"g{p}", "gpu"))
                    else:
                        gpu_tiles.build_notice(self.view)
                with ui.element("div").classes("side"):
                    host_panel.build_host(self.view, self.config, cores, lambda: self._chart(frame, "host", "host"))
                    runs_panel.build_runs(self.config)
                    self.log = event_feed.build_events()
        self.view.apply(frame.cells)
        recent = self.feed.store.events.read_after(max(0, frame.event_cursor - event_feed.MAX_LINES))
        event_feed.push(self.log, [event_feed.event_line(e) for e in recent if e.seq <= frame.event_cursor])
        self.frame_number, self.cursor, self.event_cursor = frame.number, frame.cursor, frame.event_cursor
        self.layout = frame.layout
        self.charts_ready = False  # Plotly loads lazily; points sent before it has drawn would be lost

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
        self._aim(frame, started)

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
        else:  # this page fell out of step: fetch its own gap from the store
            for chart, refs in frame.charts.items():
                points = charts.new_points(self.feed.store, refs, self.cursor, frame.cursor, self.feed.window)
                if points is not None:
                    self._extend(chart, points)
            missed = self.feed.store.events.read_after(self.event_cursor)
            lines = [event_feed.event_line(e) for e in missed if e.seq <= frame.event_cursor]
            event_feed.push(self.log, lines)
            self.view.apply(frame.cells)
        self.frame_number, self.cursor, self.event_cursor = frame.number, frame.cursor, frame.event_cursor

    def _extend(self, chart: str, points: ChartPoints) -> None:
        plot = self.plots.get(chart)
        if plot is not None:
            plot.run_plot_method("extendTraces", points.update, points.indices, self.feed.max_points(chart))

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
