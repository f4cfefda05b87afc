"""The header: title, host label, a SIMULATED badge, fleet totals, freshness of the data and the clock."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from monitor.config import Config
from monitor.model.documents import GPU_OK, GPU_UNAVAILABLE, GpuDocumentField, GpuField
from monitor.model.numbers import finite
from monitor.wall import format as fmt
from monitor.wall.cells import Cell, CellView
from monitor.wall.usage_strip import build_strip

BUSY_UTIL_PERCENT = 10.0


def freshness(now: float, config: Config, gpu_state: tuple[float, Any] | None,
              system_state: tuple[float, Any] | None, started_at: float) -> tuple[Cell, Cell, bool]:
    """(pill, age text, stale): stale when a source's newest data is older than
    `stale_after_intervals` of its interval (a GPU source without a driver is not expected to tick)."""
    limit = config.wall.stale_after_intervals
    sources: list[tuple[str, float | None, float]] = []
    if config.gpu.enabled:
        doc = gpu_state[1] if gpu_state else None
        if not (isinstance(doc, dict) and doc.get(GpuDocumentField.STATE) == GPU_UNAVAILABLE):
            sources.append(("GPU", gpu_state[0] if gpu_state else None, config.gpu.interval_s))
    if config.host.enabled:
        sources.append(("host", system_state[0] if system_state else None, config.host.interval_s))
    times = [t for _, t, _ in sources if t is not None]
    stale = []
    for name, t, interval in sources:
        reference = t if t is not None else started_at
        if now - reference > limit * interval:
            stale.append(f"{name} data {fmt.age(now - reference)} old" if t is not None else f"no {name} data yet")
    if stale:
        return Cell("STALE", level="crit"), Cell(" · ".join(stale), level="crit"), True
    if not times:
        return Cell("WAITING", level="warn"), Cell("no data yet"), False
    return Cell("LIVE", level=""), Cell(f"data {fmt.age(now - max(times))} old"), False


def header_cells(now: float, config: Config, gpu_doc: dict[str, Any] | None) -> dict[str, Cell]:
    gpus = [g for g in (gpu_doc or {}).get(GpuDocumentField.GPUS) or [] if isinstance(g, dict)]
    cells = {
        "hdr.clock": Cell(fmt.clock(now)),
        "hdr.date": Cell(fmt.day(now)),
        "hdr.sim": Cell("SIMULATED DATA", level="" if (gpu_doc or {}).get(GpuDocumentField.SIMULATED) else "off"),
    }
    ok = [g for g in gpus if g.get(GpuField.STATUS, GPU_OK) == GPU_OK]
    utils = [u for g in ok if (u := finite(g.get(GpuField.UTILIZATION_GPU_PERCENT))) is not None]
    powers = [p for g in ok if (p := finite(g.get(GpuField.POWER_DRAW_WATTS))) is not None]
    used = [u for g in ok if (u := finite(g.get(GpuField.MEMORY_USED_BYTES))) is not None]
    total = [t for g in ok if (t := finite(g.get(GpuField.MEMORY_TOTAL_BYTES))) is not None]
    busy = sum(1 for u in utils if u >= BUSY_UTIL_PERCENT)
    show = "" if gpus else "off"
    cells["hdr.busy"] = Cell(f"{busy} / {len(gpus)}" if gpus else fmt.NA, level=show)
    cells["hdr.util"] = Cell(f"{sum(utils) / len(utils):.0f} %" if utils else fmt.NA, level=show)
    cells["hdr.mem"] = Cell(f"{fmt.gib(sum(used), 0)} / {fmt.gib(sum(total), 0)} GiB" if used and total else fmt.NA,
                            level=show)
    cells["hdr.power"] = Cell(fmt.total_power(sum(powers)) if powers else fmt.NA, level=show)
    cells["hdr.kpis"] = Cell(level=show)
    return cells


def _kpi(view: CellView, key: str, label: str) -> None:
    with ui.element("div").classes("kpi"):
        ui.label(label).classes("kpi-l")
        view.label(key, "kpi-v")


def build_header(view: CellView, config: Config) -> None:
    with ui.element("div").classes("hdr"):
        with ui.element("div").classes("brand"):
            ui.element("div").classes("logo")
            ui.label(config.wall.title).classes("title")
            ui.label(config.host_label).classes("host")
        view.label("hdr.sim", "badge sim")
        build_strip(view)
        with view.bind("hdr.kpis", ui.element("div").classes("kpis")):
            _kpi(view, "hdr.busy", "GPUs busy")
            _kpi(view, "hdr.util", "avg GPU util")
            _kpi(view, "hdr.mem", "GPU memory")
            _kpi(view, "hdr.power", "GPU power")
        with ui.element("div").classes("live"):
            view.label("hdr.live", "pill")
            view.label("hdr.age", "age")
        with ui.element("div").classes("clockbox"):
            view.label("hdr.clock", "clock")
            view.label("hdr.date", "date")
