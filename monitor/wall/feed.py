"""The shared part of the wall: one frame per tick, computed once for every viewer.

A frame holds every cell of the wall already formatted, the keys that changed since the previous
frame, the new chart points between two store cursors and the new event lines. Each page applies
the frames it has not seen: when its cursor is the frame's base it only pushes what changed; a
page that fell behind (just opened, reconnected, slow) catches up from the store on its own.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from monitor.config import Config
from monitor.model.documents import GpuDocumentField, Source
from monitor.model.run_gpus import join_document
from monitor.model.store import Store
from monitor.wall import alert_banner, charts, gpu_tiles, header, host_panel, overview
from monitor.wall.cells import Cell
from monitor.wall.charts import ChartPoints, ChartWindow, Refs
from monitor.wall.event_feed import EventLine, event_line
from monitor.wall.runs_panel import RunFeed, RunPoints
from monitor.wall.usage_strip import UsageStrip

FRAMES_KEPT = 8
# A page that lands within this fraction of an interval after a frame uses that frame.
REUSE_FRACTION = 0.5
# Aim the pages' ticks this long after the newest collector reading, so a tick carries it.
TICK_AFTER_SAMPLE_S = 0.15


@dataclass(frozen=True, slots=True)
class Frame:
    number: int
    made_at: float
    base: int  # chart points cover store cursors (base, cursor]
    cursor: int
    event_base: int  # event lines cover event cursors (event_base, event_cursor]
    event_cursor: int
    layout: tuple[Any, ...]  # when this changes, a page rebuilds its element tree
    cells: dict[str, Cell]
    changed: tuple[str, ...]  # keys whose cell differs from the previous frame
    points: dict[str, ChartPoints]
    events: tuple[EventLine, ...]
    charts: dict[str, Refs]
    gpus: list[dict[str, Any]] = field(default_factory=list)
    next_tick: float = 0.0  # when pages should tick next (wall clock), phase-locked to the collectors
    run_slots: tuple[str, ...] = ()  # the run id in each run card slot ("": empty)
    run_points: dict[str, RunPoints] = field(default_factory=dict)  # new points per run id


@dataclass(slots=True)
class TickStats:
    """How punctual the pages' ticks are (for benchmarks and diagnostics): the longest gap between
    two ticks of one page, and how many gaps were longer than twice the flush interval."""

    ticks: int = 0
    late: int = 0
    max_gap_s: float = 0.0
    max_delay_s: float = 0.0  # how long after its aimed instant a tick started

    def note(self, gap_s: float | None, delay_s: float, interval_s: float) -> None:
        self.ticks += 1
        self.max_delay_s = max(self.max_delay_s, delay_s)
        if gap_s is not None:
            self.max_gap_s = max(self.max_gap_s, gap_s)
            self.late += gap_s > 2 * interval_s

    def take(self) -> dict[str, float]:
        """The figures so far, then start counting afresh."""
        figures = {"ticks": self.ticks, "late": self.late, "max_gap_s": self.max_gap_s,
                   "max_delay_s": self.max_delay_s}
        self.ticks = self.late = 0
        self.max_gap_s = self.max_delay_s = 0.0
        return figures


class WallFeed:
    """Process-wide; owned by the wall registration, read by every page on the event loop thread."""

    def __init__(self, store: Store, config: Config, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.interval = config.wall.flush_interval_s
        self.started_at = clock()
        self.window = ChartWindow.from_config(config.wall.chart_window_s, config.history.window_s,
                                              config.history.day_tier, self.started_at - config.history.window_s)
        self.frames: deque[Frame] = deque(maxlen=FRAMES_KEPT)
        self.frames_made = 0
        self.tick_stats = TickStats()
        self.runs = RunFeed(store)
        # the header's GPU-hours strip; lab-wide from the prometheus source's document when it is on
        self.usage = UsageStrip(store.usage, store if config.prometheus.url is not None else None)
        self.multi = config.prometheus.url is not None  # the multi-host overview (prometheus source)
        self._hosts_cache: tuple[Any, dict[str, Cell]] = (None, {})

    # -- what pages call ----------------------------------------------------------------------------
    def latest(self) -> Frame:
        """The current frame; computed at most about once per flush interval, whoever asks."""
        now = self.clock()
        last = self.frames[-1] if self.frames else None
        if last is not None and now - last.made_at < REUSE_FRACTION * self.interval:
            return last
        frame = self._make(last, now)
        self.frames.append(frame)
        return frame

    def since(self, number: int) -> list[Frame] | None:
        """The frames after frame `number`, oldest first, when they form an unbroken chain."""
        frames = [f for f in self.frames if f.number > number]
        if not frames or frames[0].number != number + 1:
            return None
        return frames

    def max_points(self, chart: str) -> int:
        interval = self.config.host.interval_s if chart == "host" else self.config.gpu.interval_s
        return self.window.max_points(interval)

    # -- computing a frame --------------------------------------------------------------------------
    def _make(self, last: Frame | None, now: float) -> Frame:
        store, config = self.store, self.config
        cursor = store.cursor
        event_cursor = store.events.cursor
        gpu_state, system_state = store.state(Source.GPU), store.state(Source.HOST)
        gpu_doc = gpu_state[1] if gpu_state and isinstance(gpu_state[1], dict) else None
        system_doc = system_state[1] if system_state and isinstance(system_state[1], dict) else None
        gpus = [g for g in (gpu_doc or {}).get(GpuDocumentField.GPUS) or [] if isinstance(g, dict)]

        pill, age, stale = header.freshness(now, config, gpu_state, system_state, self.started_at)
        remote = store.remote.view() if self.multi else None
        fleet = gpu_doc  # with other hosts the header's totals cover every GPU that is up
        if remote is not None and remote.hosts:
            fleet = {**(gpu_doc or {}), GpuDocumentField.GPUS: overview.fleet_gpus(remote, gpus, config.host_label)}
        cells = header.header_cells(now, config, fleet)
        cells["hdr.live"], cells["hdr.age"] = pill, age
        cells["wall"] = Cell(level="stale" if stale else "")
        summaries = store.runs.summaries()
        if remote is not None:
            summaries = overview.run_summaries(remote, summaries, config.host_label)
        run_slots, run_cells, run_points = self.runs.tick(summaries, now)
        cells.update(run_cells)
        cells.update(alert_banner.alert_cells(store, now))
        joins = gpu_tiles.join_texts(join_document(store), summaries, self.runs.latest())
        cells.update(gpu_tiles.gpu_cells(gpu_doc, config, joins))
        cells.update(host_panel.host_cells(system_doc, config))
        cells.update(self.usage.cells(now))

        mode = gpu_tiles.gpu_mode(gpu_doc, config)
        hosts = None
        if remote is not None:
            hosts = overview.shape(remote)
            cells.update(self._host_cells(remote, hosts, now))
            if hosts[0] > overview.BAND_MAX_HOSTS:
                mode = "overview"  # the rows take the GPU area; this server is one of them
        layout = (mode, len(gpus) if mode == "tiles" else 0, host_panel.core_count(system_doc), hosts)
        chart_refs = {**(charts.gpu_chart_refs(store, gpus) if mode == "tiles" else {}),
                      **charts.host_chart_refs(store)}

        # A frame long after the previous one (nobody watched) starts a new chain instead of
        # carrying a backlog no page is waiting for.
        fresh = last is None or now - last.made_at > 3 * self.interval or last.layout != layout
        base = cursor if fresh or last is None else last.cursor
        event_base = event_cursor if fresh or last is None else last.event_cursor
        points = {}
        if base < cursor:
            for chart, refs in chart_refs.items():
                found = charts.new_points(store, refs, base, cursor, self.window)
                if found is not None:
                    points[chart] = found
        events = tuple(event_line(e) for e in store.events.read_after(event_base)) if event_base < event_cursor else ()
        if last is None or last.layout != layout:
            changed = tuple(cells)
        else:
            changed = tuple(k for k, c in cells.items() if last.cells.get(k) != c)

        self.frames_made += 1
        return Frame(self.frames_made, now, base, cursor, event_base, event_cursor, layout, cells, changed,
                     points, events, chart_refs, gpus, self._next_tick(now, gpu_state, system_state),
                     run_slots, run_points)

    def _host_cells(self, remote: Any, hosts: tuple[int, int], now: float) -> dict[str, Cell]:
        """The overview's cells; the host rows are formatted again only when the registry changed."""
        key = (remote.seq, hosts)
        if self._hosts_cache[0] != key:
            rows = overview.overview_cells(remote, self.config, now, *hosts)
            self._hosts_cache = (key, rows)
        return {**self._hosts_cache[1], **overview.source_cells(remote, self.config, now)}

    def _next_tick(self, now: float, *states: tuple[float, Any] | None) -> float:
        """The next tick time, just after the collectors' next reading (their phase), at least a
        quarter interval ahead; every page aims at the same instant, so one frame serves them all."""
        interval = self.interval
        times = [s[0] for s in states if s is not None]
        phase = (max(times) + TICK_AFTER_SAMPLE_S) if times else now + interval
        k = math.floor((now + 0.25 * interval - phase) / interval) + 1
        return phase + k * interval
