"""The host panel: CPU (total and a per-core heat strip), load, memory, swap, network and disk rates,
a CPU/memory history chart and the usage of the disks that hold the run roots."""

from __future__ import annotations

import math
from typing import Any

from nicegui import ui

from monitor.config import Config
from monitor.model.documents import DiskField, HostField
from monitor.model.numbers import finite
from monitor.wall import format as fmt
from monitor.wall.cells import Cell, CellView, HeatStrip
from monitor.wall.theme import level_at_or_above

MAX_DISK_ROWS = 3
HEAT_MIN_COLUMNS = 16  # a 4-core box gets 4 small cells, not 4 wide bars
HEAT_MAX_COLUMNS = 32


def core_count(system_doc: dict[str, Any] | None) -> int:
    cores = (system_doc or {}).get(HostField.CPU_PER_CORE_PERCENT)
    return len(cores) if isinstance(cores, list) else 0


def host_cells(system_doc: dict[str, Any] | None, config: Config) -> dict[str, Cell]:
    doc = system_doc or {}
    cpu = finite(doc.get(HostField.CPU_PERCENT))
    cores = doc.get(HostField.CPU_PER_CORE_PERCENT) if isinstance(doc.get(HostField.CPU_PER_CORE_PERCENT), list) else []
    load = doc.get(HostField.LOAD_AVERAGE) if isinstance(doc.get(HostField.LOAD_AVERAGE), list) else []
    used, total = finite(doc.get(HostField.MEMORY_USED_BYTES)), finite(doc.get(HostField.MEMORY_TOTAL_BYTES))
    swap_used, swap_total = finite(doc.get(HostField.SWAP_USED_BYTES)), finite(doc.get(HostField.SWAP_TOTAL_BYTES))
    count = finite(doc.get(HostField.CPU_COUNT)) or len(cores) or None
    temp = finite(doc.get(HostField.CPU_TEMPERATURE_CELSIUS))
    uptime = finite(doc.get(HostField.UPTIME_S))

    up = ("host monitoring is off" if not config.host.enabled
          else f"up {fmt.duration(uptime, coarse=True)}" if uptime is not None else "waiting for data")
    info = [f"{count:.0f} cores" if count else "cores n/a"]
    if temp is not None:
        info.append(fmt.celsius(temp))
    mem_ratio, swap_ratio = fmt.ratio(used, total), fmt.ratio(swap_used, swap_total)
    cells = {
        "h.up": Cell(up),
        "h.cpu": Cell(fmt.percent(cpu), fmt.fill(cpu), level_at_or_above(cpu, 85, 97)),
        "h.load": Cell("load " + " · ".join(f"{v:.2f}" if (v := finite(x)) is not None else fmt.NA
                                            for x in load[:3]) if load else "load n/a"),
        "h.cores": Cell(" · ".join(info)),
        "h.heat": Cell(data=tuple(round(v) if (v := finite(x)) is not None else -1 for x in cores)),
        "h.mem": Cell(fmt.gib(used), fmt.fill(100 * mem_ratio if mem_ratio is not None else None),
                      level_at_or_above(mem_ratio, 0.85, 0.95)),
        "h.memx": Cell(f"{100 * mem_ratio:.0f} %" if mem_ratio is not None else ""),
        "h.memt": Cell(f"/ {fmt.gib(total)} GiB"),
        "h.swap": Cell(f"swap {fmt.gib(swap_used)} / {fmt.gib(swap_total)} GiB" if swap_total else "no swap",
                       level=level_at_or_above(swap_ratio, 0.5, 0.8)),
        "h.rx": Cell(fmt.rate(doc.get(HostField.NET_RX_BYTES_PER_SECOND))),
        "h.tx": Cell(fmt.rate(doc.get(HostField.NET_TX_BYTES_PER_SECOND))),
        "h.dr": Cell(fmt.rate(doc.get(HostField.DISK_READ_BYTES_PER_SECOND))),
        "h.dw": Cell(fmt.rate(doc.get(HostField.DISK_WRITE_BYTES_PER_SECOND))),
    }
    disks = [d for d in doc.get(HostField.DISKS) or [] if isinstance(d, dict)][:MAX_DISK_ROWS]
    for j in range(MAX_DISK_ROWS):
        k = f"h.d{j}"
        if j >= len(disks):
            cells[k] = Cell(level="off")
            continue
        d = disks[j]
        cells[k] = Cell(level="")
        cells[k + ".p"] = Cell(fmt.text(d.get(DiskField.PATH)))
        ratio = finite(d.get(DiskField.USED_RATIO))
        if d.get(DiskField.ERROR) or ratio is None:
            cells[k + ".v"] = Cell(fmt.text(d.get(DiskField.ERROR), "n/a"), 0, "warn")
        else:
            cells[k + ".v"] = Cell(f"{100 * ratio:.0f} % of {fmt.bytes_size(d.get(DiskField.TOTAL_BYTES))}",
                                   fmt.fill(100 * ratio),
                                   level_at_or_above(ratio, config.thresholds.disk_ratio - 0.05,
                                                     config.thresholds.disk_ratio))
    return cells


def heat_geometry(cores: int) -> tuple[int, str]:
    """Columns and cell height of the heat strip: one row up to 32 cores, then rows of 32."""
    cols = max(HEAT_MIN_COLUMNS, min(cores, HEAT_MAX_COLUMNS))
    rows = max(1, math.ceil(cores / cols))
    return cols, f"{max(0.35, min(1.3, 2.6 / rows)):.2f}rem"


def _io(view: CellView, key: str, label: str, cls: str) -> None:
    with ui.element("div").classes("io"):
        ui.label(label).classes("s-l")
        view.label(key, f"io-v {cls}")


def build_host(view: CellView, config: Config, cores: int, chart_slot: Any) -> None:
    with ui.element("div").classes("panel hostp"):
        with ui.element("div").classes("p-head"):
            ui.label("Host").classes("p-title")
            ui.label(config.host_label).classes("p-host")
            view.label("h.up", "p-sub")
        with ui.element("div").classes("h-top"):
            with ui.element("div").classes("meter"):
                ui.label("CPU").classes("m-l")
                view.label("h.cpu", "m-v big pct cpuv")
            with ui.element("div").classes("meter"):
                with ui.element("div").classes("m-head"):
                    ui.label("Memory").classes("m-l")
                    view.label("h.memx", "m-x")
                with ui.element("div").classes("m-row"):
                    view.label("h.mem", "m-v mid memv")
                    view.label("h.memt", "m-t")
        cols, cell = heat_geometry(cores)
        view.bind("h.heat", HeatStrip(tuple([-1] * cores)).style(f"--cols: {cols}; --cell: {cell}"))
        with ui.element("div").classes("h-info"):
            view.label("h.load", "s-x")
            view.label("h.cores", "s-x")
            view.label("h.swap", "s-x")
        with ui.element("div").classes("h-io"):
            _io(view, "h.rx", "Net in", "rx")
            _io(view, "h.tx", "Net out", "tx")
            _io(view, "h.dr", "Disk read", "dr")
            _io(view, "h.dw", "Disk write", "dw")
        with ui.element("div").classes("h-chart"):
            chart_slot()
        for j in range(MAX_DISK_ROWS):
            k = f"h.d{j}"
            with view.bind(k, ui.element("div").classes("disk")):
                view.label(k + ".p", "d-path")
                view.label(k + ".v", "d-v")
