"""What the runs collector keeps per run, and how it reports its health."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from collectors.runs.discovery import RunLayout
from collectors.runs.sources import Source
from collectors.runs.status import RunProgress

if TYPE_CHECKING:
    from collectors.runs.collector import RunsCollector

MAX_PROBLEMS_SHOWN = 20
RESTART_SHOWN_S = 3.0  # a file-watcher restart stays in /healthz this long, so a poller sees it happened


@dataclass
class RunState:
    id: str
    layout: RunLayout
    progress: RunProgress = field(default_factory=RunProgress)
    sources: dict[str, Source] = field(default_factory=dict)
    deleted: bool = False
    loaded: bool = False  # every file read once
    settled: bool = False  # its status after loading is set: later changes are announced
    announce: bool = False
    time_bound: bool = True  # its status may change with time alone (running: may stall)


def health_detail(c: RunsCollector, now: float) -> dict[str, object]:
    """The runs collector's /healthz detail; "degraded" names a missing root or a watcher restart."""
    detail: dict[str, object] = {
        "runs": sum(1 for s in c.runs.values() if not s.deleted),
        "roots": {r: ("missing" if r in c.missing_roots else "ok") for r in c.roots},
        "initial_scan_done": c.initial_scan_done,
        "backlog_files": len(c.in_backlog),
        "watch": c.watcher.state() if c.watcher else {"events": "off (runs.use_events: false)"},
        "problems": [f"{p}: {r}" for p, r in list(c.problems.items())[:MAX_PROBLEMS_SHOWN]],
        "last_rescan": c.last_rescan,
    }
    degraded = []
    if c.missing_roots:
        degraded.append("run root missing: " + ", ".join(c.missing_roots))
    restart = c.watcher.last_restart if c.watcher else None
    if restart is not None and 0 <= now - restart[0] < RESTART_SHOWN_S:
        degraded.append(f"file watcher restarted {now - restart[0]:.0f} s ago ({restart[1]})")
    if degraded:
        detail["degraded"] = "; ".join(degraded)
    return detail
