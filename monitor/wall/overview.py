"""The multi-host overview: one row per host that Prometheus knows (prometheus source on).

A row: the host name and its state ("8 GPUs · 5 busy", or "DOWN · last seen 14:32:05", greyed),
CPU and memory with bars, a sparkline of its mean GPU utilisation, and one small tile per GPU
coloured by utilisation, with its memory as a bar and its temperature. Every value comes from the
store's remote-host registry (`store.remote`), formatted once per change for every viewer.

Layout: up to BAND_MAX_HOSTS hosts the overview is a band above this server's own GPU tiles; with
more, the rows take the whole GPU area in columns of up to ROWS_PER_COLUMN (32 hosts: 2 x 16) and
this server's detail is its row plus the host, runs and events panels: 32 rows and 8 detailed GPU
tiles cannot both be readable on one 1080p screen, and the lab-wide picture matters more there.
"""

from __future__ import annotations

import math
from typing import Any

from nicegui import ui

from monitor.config import Config
from monitor.model.documents import GPU_LOST, GpuField, HostField
from monitor.model.numbers import finite
from monitor.model.remote_hosts import RemoteHost, RemoteView
from monitor.wall import format as fmt
from monitor.wall.cells import Cell, CellView, SparkLine
from monitor.wall.theme import temperature_level

BAND_MAX_HOSTS = 8
ROWS_PER_COLUMN = 16
BUSY_UTIL_PERCENT = 10.0
UTIL_STEPS = (10.0, 40.0, 70.0, 90.0)  # tile colour classes u0 (idle) .. u4 (flat out)


def columns(hosts: int) -> int:
    return 1 if hosts <= BAND_MAX_HOSTS else math.ceil(hosts / ROWS_PER_COLUMN)


def shape(remote: RemoteView) -> tuple[int, int]:
    """(host rows, GPU tiles per row): when it changes, pages rebuild."""
    return len(remote.hosts), max((len(h.gpus) for h in remote.hosts), default=0)


def util_level(util: float | None) -> str:
    if util is None:
        return "na"
    return f"u{sum(util >= step for step in UTIL_STEPS)}"


def fleet_gpus(remote: RemoteView, local: list[dict[str, Any]], local_host: str) -> list[dict[str, Any]]:
    """Every GPU of every host that is up (the header's fleet totals); this server's own when
    Prometheus does not scrape it."""
    gpus = [g for h in remote.hosts if h.up for g in h.gpus]
    return gpus if any(h.host == local_host for h in remote.hosts) else gpus + local


def run_summaries(remote: RemoteView, local: list[dict[str, Any]], local_host: str) -> list[dict[str, Any]]:
    """This server's runs (from its own registry, with charts) and every other host's (from
    Prometheus), most recently updated first; each carries its `host`."""
    merged = [{**s, "host": local_host} for s in local]
    merged += [dict(r) for r in remote.runs if r.get("host") != local_host]
    return sorted(merged, key=lambda s: -(finite(s.get("updated")) or finite(s.get("started")) or 0.0))


def source_cells(remote: RemoteView, config: Config, now: float) -> dict[str, Cell]:
    source = remote.source
    up = sum(1 for h in remote.hosts if h.up)
    cells = {"ov.count": Cell(f"{up} / {len(remote.hosts)} up")}
    if source.failing_since is not None:
        text = f"Prometheus not answering since {fmt.clock(source.failing_since)}: {fmt.text(source.reason)}"
        cells["ov.src"] = Cell(text, level="crit")
        cells["ov"] = Cell(level="stale")
    elif source.ok_time is None:
        cells["ov.src"] = Cell(f"waiting for Prometheus at {fmt.text(source.url)}…", level="warn")
        cells["ov"] = Cell(level="")
    else:
        cells["ov.src"] = Cell(f"via Prometheus · {fmt.age(now - source.ok_time)} ago", level="")
        cells["ov"] = Cell(level="")
    return cells


def host_cells(i: int, host: RemoteHost | None, gpu_slots: int, config: Config, local_host: str,
               compact: bool = False) -> dict[str, Cell]:
    """One row's cells; `compact`: rows in columns, too narrow for "this server" (its border says it)."""
    k = f"h{i}"
    if host is None:
        return {k: Cell(level="off")}
    gpus = host.gpus
    here = host.host == local_host
    if host.up:
        busy = sum(1 for g in gpus if (finite(g.get(GpuField.UTILIZATION_GPU_PERCENT)) or 0) >= BUSY_UTIL_PERCENT)
        state = f"{len(gpus)} GPU{'s' if len(gpus) != 1 else ''} · {busy} busy" if gpus else "no GPUs"
        status = Cell(state + (" · this server" if here and not compact else ""), level="")
    else:
        status = Cell(f"DOWN · last seen {fmt.clock(host.last_seen)}", level="crit")
    system = host.system
    cpu = finite(system.get(HostField.CPU_PERCENT))
    mem_ratio = fmt.ratio(system.get(HostField.MEMORY_USED_BYTES), system.get(HostField.MEMORY_TOTAL_BYTES))
    mem = 100 * mem_ratio if mem_ratio is not None else None
    cells = {
        k: Cell(level="down" if not host.up else "self" if here else ""),
        k + ".n": Cell(host.host),
        k + ".s": status,
        k + ".c": Cell(fmt.percent(cpu), fmt.fill(cpu)),
        k + ".m": Cell(fmt.percent(mem), fmt.fill(mem)),
        k + ".sp": Cell(data=tuple(fmt.fill(v) for v in host.spark)),
    }
    temp_warn = config.thresholds.gpu_temp_c
    for j in range(gpu_slots):
        g = f"{k}.g{j}"
        if j >= len(gpus):
            cells[g] = Cell(level="off")
            continue
        gpu = gpus[j]
        util = finite(gpu.get(GpuField.UTILIZATION_GPU_PERCENT))
        used = fmt.ratio(gpu.get(GpuField.MEMORY_USED_BYTES), gpu.get(GpuField.MEMORY_TOTAL_BYTES))
        temp = finite(gpu.get(GpuField.TEMPERATURE_CELSIUS))
        lost = gpu.get(GpuField.STATUS) == GPU_LOST
        cells[g] = Cell(level="lost" if lost else util_level(util),
                        pct=fmt.fill(100 * used) if used is not None else None)
        cells[g + ".u"] = Cell("LOST" if lost else fmt.percent(util))
        cells[g + ".t"] = Cell(f"{temp:.0f}°" if temp is not None else "",
                               level=temperature_level(temp, temp_warn))
    return cells


def overview_cells(remote: RemoteView, config: Config, now: float, rows: int, gpu_slots: int) -> dict[str, Cell]:
    cells = source_cells(remote, config, now)
    hosts = remote.hosts
    compact = columns(rows) > 1
    for i in range(rows):
        cells.update(host_cells(i, hosts[i] if i < len(hosts) else None, gpu_slots, config, config.host_label,
                                compact))
    return cells


def build_overview(view: CellView, rows: int, gpu_slots: int) -> None:
    """The overview band: a head line and `rows` host rows of `gpu_slots` GPU tiles each."""
    cols = columns(rows)
    per_col = math.ceil(rows / cols) if rows else 1
    with view.bind("ov", ui.element("div").classes("ov panel")):
        with ui.element("div").classes("p-head"):
            ui.label("Hosts").classes("p-title")
            view.label("ov.count", "ov-count")
            view.label("ov.src", "p-sub ov-src")
        style = f"--ov-cols: {cols}; --ov-rows: {per_col}; --ov-gpus: {max(gpu_slots, 1)}"
        with ui.element("div").classes(f"ov-grid {'ov-band' if cols == 1 else 'ov-full'}").style(style):
            for i in range(rows):
                build_row(view, i, gpu_slots)


def build_row(view: CellView, i: int, gpu_slots: int) -> None:
    k = f"h{i}"
    with view.bind(k, ui.element("div").classes("ov-row")):
        with ui.element("div").classes("ov-id"):
            view.label(k + ".n", "ov-name")
            view.label(k + ".s", "ov-state")
        with ui.element("div").classes("ov-sys"):
            with ui.element("div").classes("ov-m"):
                ui.label("CPU").classes("ov-l")
                view.label(k + ".c", "ov-v cpu")
            with ui.element("div").classes("ov-m"):
                ui.label("MEM").classes("ov-l")
                view.label(k + ".m", "ov-v mem")
        view.bind(k + ".sp", SparkLine().classes("ov-spark"))
        with ui.element("div").classes("ov-gpus"):
            for j in range(gpu_slots):
                g = f"{k}.g{j}"
                with view.bind(g, ui.element("div").classes("ov-gpu")):
                    view.label(g + ".u", "ov-u")
                    view.label(g + ".t", "ov-t")
