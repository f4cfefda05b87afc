"""The runs collector's /healthz detail (runs, roots, backlog, file watcher, problems) and root events."""

from __future__ import annotations

import logging
from typing import Protocol

from collectors.runs.run_state import RunState
from collectors.runs.watcher import RunWatcher
from monitor.model.run_registry import EventSink

log = logging.getLogger("collectors.runs.collector")

MAX_PROBLEMS_SHOWN = 20
RESTART_SHOWN_S = 3.0  # a file-watcher restart stays in /healthz this long, so a poller sees it happened


class RunsView(Protocol):
    """What the health detail reads of the runs collector."""

    runs: dict[str, RunState]
    roots: list[str]
    missing_roots: list[str]
    initial_scan_done: bool
    in_backlog: set[str]
    watcher: RunWatcher | None
    problems: dict[str, str]
    last_rescan: float | None


def health_detail(c: RunsView, now: float) -> dict[str, object]:
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


def note_missing_roots(events: EventSink, before: list[str], missing: list[str]) -> list[str]:
    """Log a root that disappeared (removed, unmounted) or came back, once per change; returns `missing`."""
    for root in missing:
        if root not in before:
            log.warning("run root %s is missing", root)
            events.add("warning", "runs", f"run root {root} is missing (removed or unmounted); "
                                          "its runs are kept until it is back")
    for root in before:
        if root not in missing:
            events.add("info", "runs", f"run root {root} is back")
    return missing
