"""The training-runs panel: a card per active or recently ended run (name, status, step, main metric
with an EMA-smoothed chart, GPUs, bad lines). With no runs the panel says where runs come from, so an
empty panel is never a mystery."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from nicegui import ui

from monitor.config import Config
from monitor.model.documents import GpuField, JoinField
from monitor.model.numbers import finite
from monitor.model.run_gpus import runs_with_gpu_readings
from monitor.model.store import Store
from monitor.wall import format as fmt
from monitor.wall import theme
from monitor.wall.cells import Cell, CellView
from monitor.wall.charts import sparkline_figure


def roots_text(config: Config) -> list[str]:
    return [str(root) for root in config.runs.roots]


def build_runs(config: Config, view: CellView | None = None) -> list[ui.element]:
    """The panel: the empty state, and MAX_CARDS card slots (hidden while empty); returns the
    elements that hold each card's chart."""
    roots = roots_text(config)
    view = view or CellView()
    slots: list[ui.element] = []
    with ui.element("div").classes("panel runs"):
        with ui.element("div").classes("p-head"):
            ui.link("Training runs", "/runs").classes("p-title")  # a laptop's click; a kiosk never clicks
            view.label("runs.count", "p-sub", Cell("0 active"))
        with view.bind("runs.empty", ui.element("div").classes("runs-empty")):
            ui.label("No training runs yet").classes("re-t")
            ui.label("labwall watches:" if roots else "labwall watches no directory yet.").classes("re-x")
            for root in roots[:4]:
                ui.label(root).classes("re-root")
            if len(roots) > 4:
                ui.label(f"and {len(roots) - 4} more").classes("re-x")
            ui.label("Add directories with runs.roots in config.yaml or --runs DIR.").classes("re-x")
        with view.bind("runs.list", ui.element("div").classes("runs-list off"), Cell(level="off")):
            slots = [build_card(view, i) for i in range(MAX_CARDS)]
    return slots


# ---- live run cards ------------------------------------------------------------------------------
MAX_CARDS = 10
MAX_POINTS = 400  # per trace; the browser trims with extendTraces' maxPoints, the feed keeps as many
EMA_WEIGHT = 0.6
ACTIVE = ("running", "stalled")
ENDED_SHOWN_S = 600.0  # finished/crashed/deleted runs stay (faded) this long after their last update
STATUS_LEVEL = {"running": "r-running", "stalled": "r-stalled", "finished": "r-finished",
                "crashed": "r-crashed", "deleted": "r-deleted"}


class RunPoints(NamedTuple):
    gen: int  # the run chart's generation: a page whose chart has another one rebuilds it
    x: list[float]
    raw: list[float]
    ema: list[float]


@dataclass(slots=True)
class RunTrace:
    """The shared state of one run card's chart: where the feed read up to, the EMA state, and the
    last MAX_POINTS points (what a page that (re)builds the card draws)."""

    metric: str
    gen: int
    cursor: int = 0
    ema: float = 0.0  # TensorBoard: last = last * w + (1 - w) * v, shown as last / (1 - w ** n)
    n: int = 0
    x: deque = field(default_factory=lambda: deque(maxlen=MAX_POINTS))
    raw: deque = field(default_factory=lambda: deque(maxlen=MAX_POINTS))
    smooth: deque = field(default_factory=lambda: deque(maxlen=MAX_POINTS))

    def add(self, points: list[list[float]]) -> RunPoints:
        xs, raws, emas = [], [], []
        w = EMA_WEIGHT
        for step, _t, value in points:
            v = finite(value)
            if v is None:
                continue
            self.ema = self.ema * w + (1 - w) * v
            self.n += 1
            xs.append(float(step))
            raws.append(_round(v))
            emas.append(_round(self.ema / (1 - w**self.n)))
        self.x.extend(xs)
        self.raw.extend(raws)
        self.smooth.extend(emas)
        # a first read of a long run: pages need only what their chart keeps
        return RunPoints(self.gen, xs[-MAX_POINTS:], raws[-MAX_POINTS:], emas[-MAX_POINTS:])


def _round(v: float) -> float:
    return float(f"{v:.5g}")


def shown_runs(summaries: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """The runs with a card: active ones and recently ended ones, most recent first, at most 10."""
    shown = []
    for s in summaries:
        ended = s.get("status") not in ACTIVE
        updated = finite(s.get("updated")) or 0.0
        if ended and now - updated > ENDED_SHOWN_S:
            continue
        shown.append(s)
        if len(shown) == MAX_CARDS:
            break
    return shown


class RunFeed:
    """Process-wide (owned by the WallFeed): the run cards' cells and chart points, once per tick."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.traces: dict[str, RunTrace] = {}
        self.gens = 0

    def tick(self, summaries: list[dict[str, Any]], now: float) -> tuple[tuple[str, ...], dict[str, Cell],
                                                                         dict[str, RunPoints]]:
        """(run id per card slot, cells, new chart points per run id)."""
        runs = shown_runs(summaries, now)
        runs = runs_with_gpu_readings(runs, self.store)
        slots = tuple(s["id"] for s in runs) + ("",) * (MAX_CARDS - len(runs))
        points: dict[str, RunPoints] = {}
        for s in runs:
            run_id, metric = s["id"], s.get("main_metric")
            trace = self.traces.get(run_id)
            if metric is None:
                self.traces.pop(run_id, None)
                continue
            if trace is None or trace.metric != metric:
                self.gens += 1
                trace = self.traces[run_id] = RunTrace(metric, self.gens)
            read = self.store.runs.read_metric_after(run_id, metric, trace.cursor)
            if read is None:
                continue
            if read.reset and trace.n:
                self.gens += 1
                trace = self.traces[run_id] = RunTrace(metric, self.gens)
            trace.cursor = read.cursor
            if read.points:
                points[run_id] = trace.add(read.points)
        for gone in set(self.traces) - set(slots):
            del self.traces[gone]
        cells = run_cells(runs, self.traces, now)
        active = sum(1 for s in summaries if s.get("status") in ACTIVE)  # all of them, not only the 10 shown
        cells["runs.count"] = Cell(f"{active} active" + (f" · {len(runs)} shown" if active > len(runs) else ""))
        return slots, cells, points

    def history(self, run_id: str) -> RunPoints | None:
        trace = self.traces.get(run_id)
        return None if trace is None else RunPoints(trace.gen, list(trace.x), list(trace.raw), list(trace.smooth))

    def latest(self) -> dict[str, float]:
        """Run id → its main metric's latest value (the runs with a card)."""
        return {run_id: t.raw[-1] for run_id, t in self.traces.items() if t.raw}

    def gen(self, run_id: str) -> int:
        trace = self.traces.get(run_id)
        return trace.gen if trace else 0


def metric_value(v: Any) -> str:
    n = finite(v)
    return fmt.NA if n is None else f"{n:.4g}"


def run_cells(runs: list[dict[str, Any]], traces: dict[str, RunTrace], now: float) -> dict[str, Cell]:
    cells: dict[str, Cell] = {
        "runs.count": Cell(f"{sum(1 for s in runs if s.get('status') in ACTIVE)} active"),
        "runs.empty": Cell(level="off" if runs else ""),
        "runs.list": Cell(level="" if runs else "off"),
    }
    for i in range(MAX_CARDS):
        k = f"r{i}"
        if i >= len(runs):
            cells[k] = Cell(level="off")
            continue
        s = runs[i]
        status = fmt.text(s.get("status"), "unknown")
        cells[k] = Cell(level=STATUS_LEVEL.get(status, ""))
        name = fmt.text(s.get("name"), s["id"])
        # with the prometheus source the panel lists every host's runs: say whose
        cells[k + ".name"] = Cell(f"{fmt.text(s['host'])} · {name}" if s.get("host") else name)
        cells[k + ".status"] = Cell(status.upper(), level=STATUS_LEVEL.get(status, ""))
        step, total = finite(s.get("step")), finite(s.get("total_steps"))
        step_text = fmt.NA if step is None else f"step {step:.0f}"
        if step is not None and total:
            step_text += f" / {total:.0f}"
        cells[k + ".step"] = Cell(step_text)
        rate = finite(s.get("rate_steps_per_s"))
        eta_s = finite(s.get("eta_s"))
        eta = fmt.duration(eta_s) if status in ACTIVE and eta_s is not None and eta_s >= 0 else ""
        extra = [f"{rate:.3g} steps/s" if rate is not None else ""]
        if eta:
            extra.append(f"ETA {eta}")
        cells[k + ".rate"] = Cell(" · ".join(e for e in extra if e))
        metric = s.get("main_metric")
        trace = traces.get(s["id"])
        latest = trace.raw[-1] if trace and trace.raw else s.get("main_value")  # another host's: its last value
        cells[k + ".metric"] = Cell(f"{fmt.text(metric)} {metric_value(latest)}" if metric else "no metric yet")
        gpus = []
        for g in s.get("gpus") or []:
            util = finite(g.get(GpuField.UTILIZATION_GPU_PERCENT))
            gpus.append(f"GPU {fmt.text(g.get(JoinField.GPU), '?')}: {util:.0f}%" if util is not None
                        else f"GPU {fmt.text(g.get(JoinField.GPU), '?')}")
        cells[k + ".gpus"] = Cell(" · ".join(gpus[:4]) + (f" +{len(gpus) - 4}" if len(gpus) > 4 else ""),
                                  level="" if gpus else "off")
        bad = int(finite(s.get("bad_lines")) or 0)  # broken lines are counted and shown, never dropped silently
        cells[k + ".bad"] = Cell(f"⚠ {bad} bad line{'s' if bad != 1 else ''}", level="warn" if bad else "off")
    return cells


def run_figure(points: RunPoints | None) -> dict[str, Any]:
    x, raw, ema = (points.x, points.raw, points.ema) if points else ([], [], [])
    return sparkline_figure([
        {"type": "scatter", "mode": "lines", "x": x, "y": raw, "name": "raw", "hoverinfo": "skip",
         "line": {"color": theme.RUN_RAW, "width": 1}},
        {"type": "scatter", "mode": "lines", "x": x, "y": ema, "name": "smoothed", "hoverinfo": "skip",
         "line": {"color": theme.RUN_EMA, "width": 2}},
    ], {"visible": False, "fixedrange": True})


def build_card(view: CellView, i: int) -> ui.element:
    """One card slot (hidden while empty); returns the element that holds its chart. The card is a
    link to its run's page (`set_card_link`)."""
    k = f"r{i}"
    with view.bind(k, ui.element("a").classes("run")):
        with ui.element("div").classes("r-head"):
            view.label(k + ".name", "r-name")
            view.label(k + ".status", "r-badge")
        with ui.element("div").classes("r-row"):
            view.label(k + ".step", "r-step")
            view.label(k + ".metric", "r-metric")
        with ui.element("div").classes("r-row"):
            view.label(k + ".rate", "r-rate")
            view.label(k + ".bad", "r-bad")
            view.label(k + ".gpus", "r-gpus")
        slot = ui.element("div").classes("r-plot")
    return slot


def set_card_link(card: ui.element, run_id: str | None) -> None:
    """Point a card at its run's page (a plain href: the wall registers no listener)."""
    href = f"/run/{run_id}" if run_id else None
    if card.props.get("href") != href:
        if href is None:
            card.props.pop("href", None)
        else:
            card.props["href"] = href
        card.update()
