"""One run as the registry keeps it (`RunRecord`), its id rules and status vocabulary."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from monitor.model.run_params import ParamValue
from monitor.model.run_points import MetricSeries

RunStatus = Literal["running", "stalled", "finished", "crashed", "deleted"]
Level = Literal["info", "warning", "error"]
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MAX_TEXT_FIELDS = 100
MAX_HISTORY = 50  # status transitions kept per run: the first one ("started") and the latest ones
MAX_FILES = 100
STATUS_LEVEL: dict[str, Level] = {
    "running": "info", "finished": "info", "stalled": "warning", "crashed": "error", "deleted": "info",
}


class EventSink(Protocol):
    def add(self, level: Level, source: str, text: str, time: float | None = None) -> Any: ...


def run_id_for(path: str, name: str) -> str:
    """Stable, URL-safe id: a readable slug of the run's name plus a hash of its absolute path."""
    digest = hashlib.sha1(os.fsencode(path)).hexdigest()[:10]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[-60:].strip("-.") or "run"
    return f"{slug}-{digest}"


def valid_run_id(run_id: str) -> bool:
    return bool(RUN_ID_PATTERN.match(run_id)) and ".." not in run_id


@dataclass(slots=True)
class MainMetricRule:
    run: str = "*"  # glob on the run's name
    metric: str = "loss"  # glob on its metric names


@dataclass
class RunRecord:
    id: str
    name: str
    path: str
    root: str
    format: str
    started: float
    status: RunStatus = "running"
    status_reason: str | None = None
    step: int | None = None
    updated: float | None = None
    total_steps: int | None = None
    rate_steps_per_s: float | None = None
    eta_s: float | None = None
    bad_lines: int = 0
    first_bad_line: dict[str, Any] | None = None
    texts: dict[str, str] = field(default_factory=dict)
    params: dict[str, ParamValue] = field(default_factory=dict)  # hyperparameters, flat `a.b` keys
    metrics: dict[str, MetricSeries] = field(default_factory=dict)
    dropped_metrics: int = 0
    deleted_at: float | None = None
    writer_pids: list[int] = field(default_factory=list)
    gpus: list[dict[str, Any]] = field(default_factory=list)  # [{gpu, uuid, pid}], set by the run join
    history: list[dict[str, Any]] = field(default_factory=list)  # [{time, status, reason}], oldest first
    files: list[str] = field(default_factory=list)  # the files the run is read from
    seq: int = 0

    def note_status(self, time: float, status: str, reason: str | None) -> None:
        self.history.append({"time": time, "status": status, "reason": reason})
        if len(self.history) > MAX_HISTORY:
            del self.history[1]  # keep when it started

    def detail(self, main_metric: str | None) -> dict[str, Any]:
        """The summary plus what only a run's own page shows: parameters, status history, files."""
        return {**self.summary(main_metric), "root": self.root, "params": dict(self.params),
                "history": [dict(h) for h in self.history], "files": list(self.files),
                "dropped_metrics": self.dropped_metrics}

    def summary(self, main_metric: str | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "path": self.path,
            "format": self.format,
            "status": self.status,
            "status_reason": self.status_reason,
            "step": self.step,
            "updated": self.updated,
            "started": self.started,
            "metrics": sorted(self.metrics),
            "main_metric": main_metric,
            "text": dict(self.texts),
            "params": dict(self.params),
            "bad_lines": self.bad_lines,
            "first_bad_line": dict(self.first_bad_line) if self.first_bad_line else None,
            "total_steps": self.total_steps,
            "rate_steps_per_s": self.rate_steps_per_s,
            "eta_s": self.eta_s,
            "gpus": [dict(g) for g in self.gpus],
            "writer_pids": list(self.writer_pids),
            "deleted": self.status == "deleted",
            "deleted_at": self.deleted_at,
        }
