"""The GPU area: one tile per GPU (bars, history chart, temperature, power, who uses it), or a
notice that says why there are no GPUs. Every value comes from the GPU state document."""

from __future__ import annotations

import math
import time
from typing import Any
from urllib.parse import quote

from nicegui import ui

from monitor.config import Config
from monitor.model.documents import (
    GPU_LOST,
    GPU_UNAVAILABLE,
    GpuDocumentField,
    GpuField,
    JoinField,
    ProcessField,
    XidField,
)
from monitor.model.numbers import finite
from monitor.wall import format as fmt
from monitor.wall.cells import Cell, CellView
from monitor.wall.theme import level_at_or_above, temperature_level

MAX_PROCESS_ROWS = 3
UNKNOWN_RUN = "unknown run"  # what the run join says of a process whose /proc it could not read
BUSY_UTIL_PERCENT = 10.0
IDLE_UTIL_PERCENT = 5.0
HELD_MEMORY_BYTES = 1024**3
# NVML clock-event reasons worth showing, with the words a person understands.
THROTTLE_WORDS = {
    "sw_power_cap": ("power cap", ""),
    "hw_slowdown": ("HW slowdown", "warn"),
    "sw_thermal_slowdown": ("thermal slowdown", "warn"),
    "hw_thermal_slowdown": ("HW thermal slowdown", "crit"),
    "hw_power_brake_slowdown": ("power brake", "warn"),
    "board_limit": ("board limit", "warn"),
    "reliability": ("reliability limit", "warn"),
}
_LEVEL_RANK = {"": 0, "warn": 1, "crit": 2}


def grid_shape(count: int) -> tuple[int, int]:
    """Columns and rows for `count` tiles in the GPU area (about 4:3): 8 GPUs → 4 x 2."""
    table = {0: (1, 1), 1: (1, 1), 2: (2, 1), 3: (3, 1), 4: (2, 2), 5: (3, 2), 6: (3, 2), 7: (4, 2), 8: (4, 2)}
    if count in table:
        return table[count]
    cols = math.ceil(math.sqrt(count * 1.5))
    return cols, math.ceil(count / cols)


def gpu_mode(gpu_doc: dict[str, Any] | None, config: Config) -> str:
    if not config.gpu.enabled:
        return "disabled"
    if gpu_doc is None:
        return "waiting"
    if gpu_doc.get(GpuDocumentField.STATE) == GPU_UNAVAILABLE or not gpu_doc.get(GpuDocumentField.GPUS):
        return "unavailable"
    return "tiles"


def notice_cells(gpu_doc: dict[str, Any] | None, config: Config) -> dict[str, Cell]:
    mode = gpu_mode(gpu_doc, config)
    if mode == "disabled":
        title, reason, extra, hint = "GPU monitoring is off", "gpu.enabled is false in the configuration", "", ""
    elif mode == "waiting":
        title, reason, extra, hint = "Waiting for the first GPU reading…", "", "", ""
    else:
        doc = gpu_doc or {}
        title = "No GPUs on this host"
        reason = fmt.text(doc.get(GpuDocumentField.REASON), "no NVIDIA GPU reported")
        extra = f"labwall retries every {config.gpu.nvml_retry_s:g} s and shows the GPUs as soon as the driver answers."
        hint = "To try the wall with simulated GPUs, start it with --demo."
    return {
        "gpu.n.title": Cell(title),
        "gpu.n.reason": Cell(reason, level="" if reason else "off"),
        "gpu.n.extra": Cell(extra, level="" if extra else "off"),
        "gpu.n.hint": Cell(hint, level="" if hint else "off"),
    }


def short_name(name: object) -> str:
    """The GPU's name without the vendor prefix every GPU here shares (it is shown as text)."""
    text = fmt.text(name, "unknown GPU")
    return text.removeprefix("NVIDIA ").strip() or text


XID_SHOWN_S = 3600.0  # a tile names its latest XID error for an hour (the alert holds alerts.gpu_xid.hold_s)


def _throttle(reasons: Any) -> tuple[str, str]:
    if not isinstance(reasons, list):
        return "", ""
    words, level = [], ""
    for reason in reasons:
        word, lv = THROTTLE_WORDS.get(str(reason), (None, ""))
        if word:
            words.append(word)
            level = lv if _LEVEL_RANK[lv] > _LEVEL_RANK[level] else level
    return ", ".join(words), level


def tile_cells(p: int, gpu: dict[str, Any], config: Config, joins: dict[Any, str] | None = None) -> dict[str, Cell]:
    """Every cell of the tile at position `p`; any field may be None ("n/a")."""
    t = config.thresholds
    k = f"g{p}."
    lost = gpu.get(GpuField.STATUS) == GPU_LOST
    util = finite(gpu.get(GpuField.UTILIZATION_GPU_PERCENT))
    used, total = finite(gpu.get(GpuField.MEMORY_USED_BYTES)), finite(gpu.get(GpuField.MEMORY_TOTAL_BYTES))
    mem_ratio = fmt.ratio(used, total)
    temp = finite(gpu.get(GpuField.TEMPERATURE_CELSIUS))
    draw, limit = finite(gpu.get(GpuField.POWER_DRAW_WATTS)), finite(gpu.get(GpuField.POWER_LIMIT_WATTS))
    power_ratio = fmt.ratio(draw, limit)

    if lost:
        state = Cell("LOST", level="lost")
    elif util is not None and util < IDLE_UTIL_PERCENT and used is not None and used >= HELD_MEMORY_BYTES:
        state = Cell("IDLE · MEMORY HELD", level="warn")
    elif util is not None and util >= BUSY_UTIL_PERCENT:
        state = Cell("BUSY", level="ok")
    else:
        state = Cell("IDLE", level="idle")

    extra = []
    pstate = gpu.get(GpuField.PSTATE)
    if pstate is not None:
        extra.append(f"P{pstate}" if isinstance(pstate, int) else fmt.text(pstate))
    fan = finite(gpu.get(GpuField.FAN_PERCENT))
    if fan is not None:
        extra.append(f"fan {fan:.0f} %")
    throttle, extra_level = _throttle(gpu.get(GpuField.THROTTLE_REASONS))
    if throttle:
        extra.append(throttle)
    ecc = finite(gpu.get(GpuField.ECC_ERRORS_UNCORRECTED))
    if ecc:
        extra.append(f"ECC errors {ecc:.0f}")
        extra_level = "crit"
    xids = [x for x in gpu.get(GpuField.XID_ERRORS) or [] if isinstance(x, dict)]
    xid_time = finite(xids[-1].get(XidField.TIME)) if xids else None
    if xid_time is not None and time.time() - xid_time < XID_SHOWN_S:
        extra.append(f"XID {fmt.text(xids[-1].get(XidField.CODE), '?')} at {fmt.clock(xid_time)}")
        extra_level = "crit"

    cells = {
        k + "tile": Cell(level="lost" if lost else ""),
        k + "idx": Cell(f"GPU {fmt.text(gpu.get(GpuField.INDEX), str(p))}"),
        k + "name": Cell(short_name(gpu.get(GpuField.NAME))),
        k + "state": state,
        k + "lost": Cell(f"Lost: {fmt.text(gpu.get(GpuField.LOST_REASON), 'no answer from the GPU')}",
                         level="" if lost else "off"),
        k + "util": Cell(fmt.percent(util), fmt.fill(util)),
        k + "mem": Cell(fmt.gib(used), fmt.fill(100 * mem_ratio if mem_ratio is not None else None),
                        level_at_or_above(mem_ratio, t.gpu_memory_ratio - 0.05, t.gpu_memory_ratio)),
        k + "memx": Cell(f"{100 * mem_ratio:.0f} %" if mem_ratio is not None else ""),
        k + "memt": Cell(f"/ {fmt.gib(total, 0)} GiB" if total is not None else "/ n/a"),
        k + "temp": Cell(fmt.celsius(temp), level=temperature_level(temp, t.gpu_temp_c)),
        k + "power": Cell(fmt.power(draw, limit),
                          fmt.fill(100 * power_ratio if power_ratio is not None else None)),
        k + "extra": Cell(" · ".join(extra) if extra else "", level=extra_level),
    }
    cells.update(process_cells(k, gpu.get(GpuField.PROCESSES), joins))
    return cells


def process_cells(k: str, processes: Any, joins: dict[Any, str] | None = None) -> dict[str, Cell]:
    """`joins`: pid → what the run join says of it ("· run · step N · metric v", "· unknown run")."""
    procs = [q for q in processes if isinstance(q, dict)] if isinstance(processes, list) else []
    procs.sort(key=lambda q: finite(q.get(ProcessField.GPU_MEMORY_BYTES)) or 0.0, reverse=True)
    cells: dict[str, Cell] = {}
    for j in range(MAX_PROCESS_ROWS):
        row = f"{k}p{j}"
        if j < len(procs):
            q = procs[j]
            memory = finite(q.get(ProcessField.GPU_MEMORY_BYTES))
            cells[row] = Cell(level="")
            cells[row + ".u"] = Cell(fmt.text(q.get(ProcessField.USER), "unknown"))
            joined = (joins or {}).get(q.get(ProcessField.PID))
            if joined and joined != UNKNOWN_RUN:
                cells[row + ".c"] = Cell(joined, level="ok")
            else:
                pid = fmt.text(q.get(ProcessField.PID), "?")
                cells[row + ".c"] = Cell(fmt.text(q.get(ProcessField.COMMAND), f"pid {pid}"))
            cells[row + ".r"] = Cell(UNKNOWN_RUN, level="" if joined == UNKNOWN_RUN else "off")
            cells[row + ".m"] = Cell(f"{fmt.gib(memory)} GiB" if memory is not None else fmt.NA)
        else:
            cells[row] = Cell(level="off")
    more = len(procs) - MAX_PROCESS_ROWS
    cells[k + "more"] = Cell(f"+ {more} more process{'es' if more > 1 else ''}", level="" if more > 0 else "off")
    cells[k + "none"] = Cell("no processes", level="" if not procs else "off")
    return cells


def join_texts(join_doc: dict[str, Any], summaries: list[dict[str, Any]],
               latest: dict[str, float] | None = None) -> dict[Any, str]:
    """pid → the text after the user on its process line, for the processes the run join knows;
    `latest`: run id → its main metric's latest value."""
    runs = {s.get("id"): s for s in summaries}
    texts: dict[Any, str] = {}
    for pid, entry in (join_doc.get(JoinField.BY_PID) or {}).items():
        if not isinstance(entry, dict):
            continue
        run = runs.get(entry.get(JoinField.RUN_ID)) if entry.get(JoinField.RUN_ID) else None
        if run is not None or entry.get(JoinField.RUN_NAME):
            parts = [fmt.text((run or {}).get("name") or entry.get(JoinField.RUN_NAME), "run")]
            step = finite((run or {}).get("step"))
            if step is not None:
                parts.append(f"step {step:.0f}")
            metric = (run or {}).get("main_metric")
            value = finite((latest or {}).get(entry.get(JoinField.RUN_ID))) if metric else None
            if metric and value is not None:
                parts.append(f"{fmt.text(metric)} {value:.4g}")
            texts[pid] = "· " + " · ".join(parts)
        elif entry.get(JoinField.REASON) == UNKNOWN_RUN:
            texts[pid] = UNKNOWN_RUN
    return texts


def gpu_cells(gpu_doc: dict[str, Any] | None, config: Config, joins: dict[Any, str] | None = None) -> dict[str, Cell]:
    if gpu_mode(gpu_doc, config) != "tiles":
        return notice_cells(gpu_doc, config)
    cells: dict[str, Cell] = {}
    for p, gpu in enumerate(g for g in (gpu_doc or {}).get(GpuDocumentField.GPUS) or [] if isinstance(g, dict)):
        cells.update(tile_cells(p, gpu, config, joins))
    return cells


def build_notice(view: CellView) -> None:
    with ui.element("div").classes("nogpu"):
        view.label("gpu.n.title", "nogpu-t")
        view.label("gpu.n.reason", "nogpu-r")
        view.label("gpu.n.extra", "nogpu-x")
        view.label("gpu.n.hint", "nogpu-x")


def gpu_href(host: str, index: int) -> str:
    return f"/gpu/{quote(host, safe='')}/{index}"


def build_tile(view: CellView, p: int, chart_slot: Any, href: str | None = None) -> None:
    """One GPU tile; `chart_slot(p)` creates the history chart inside the tile; with `href` the tile
    is a plain link (to the GPU's page)."""
    k = f"g{p}."
    tile = ui.element("a" if href else "div").classes("tile")
    if href:
        tile.props["href"] = href
    with view.bind(k + "tile", tile):
        with ui.element("div").classes("t-head"):
            view.label(k + "idx", "t-idx")
            view.label(k + "name", "t-name")
            view.label(k + "state", "t-state")
        view.label(k + "lost", "t-lost")
        with ui.element("div").classes("meters"):
            with ui.element("div").classes("meter"):
                ui.label("Utilisation").classes("m-l")
                view.label(k + "util", "m-v big pct")
            with ui.element("div").classes("meter"):
                with ui.element("div").classes("m-head"):
                    ui.label("Memory").classes("m-l")
                    view.label(k + "memx", "m-x")
                with ui.element("div").classes("m-row"):
                    view.label(k + "mem", "m-v mid memv")
                    view.label(k + "memt", "m-t")
        with ui.element("div").classes("t-chart"):
            chart_slot(p)
        with ui.element("div").classes("t-stats"):
            with ui.element("div").classes("stat"):
                ui.label("Temp").classes("s-l")
                view.label(k + "temp", "s-v")
            with ui.element("div").classes("stat"):
                ui.label("Power").classes("s-l")
                view.label(k + "power", "s-v s-bar")
        view.label(k + "extra", "t-extra")
        with ui.element("div").classes("procs"):
            for j in range(MAX_PROCESS_ROWS):
                row = f"{k}p{j}"
                with view.bind(row, ui.element("div").classes("proc")):
                    view.label(row + ".u", "p-user")
                    view.label(row + ".c", "p-cmd")
                    view.label(row + ".r", "p-run")
                    view.label(row + ".m", "p-mem")
            view.label(k + "more", "p-more")
            view.label(k + "none", "p-none")
