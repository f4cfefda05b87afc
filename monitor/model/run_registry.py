"""The run registry: every training run found on disk, its status and its metric points.

Written by the runs collector's thread, read by views (API, wall). Thread-safe. Memory is bounded:
points per metric are capped (see monitor/model/run_points.py), metrics and text fields per run are
capped, and a deleted run is forgotten `forget_after_s` after it disappeared.

Every change takes the next value of one registry-wide sequence, so a view keeps one cursor and
asks `changed_after(cursor)` which runs (and which of their metrics) changed; per metric,
`read_metric_after(run_id, metric, cursor)` returns only the points it has not read yet.
"""

from __future__ import annotations

import fnmatch
import threading
import time as _time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from monitor.model.run_params import MAX_PARAM_CHARS as MAX_PARAM_CHARS  # re-exported: the bounds of set_params
from monitor.model.run_params import MAX_PARAMS as MAX_PARAMS
from monitor.model.run_params import MAX_TEXT_CHARS, flatten_params, shorten
from monitor.model.run_points import MetricRead, MetricSeries
from monitor.model.run_record import (
    MAX_FILES as MAX_FILES,
)
from monitor.model.run_record import (
    MAX_HISTORY as MAX_HISTORY,
)
from monitor.model.run_record import (
    MAX_TEXT_FIELDS as MAX_TEXT_FIELDS,
)
from monitor.model.run_record import (
    RUN_ID_PATTERN as RUN_ID_PATTERN,
)
from monitor.model.run_record import (
    STATUS_LEVEL as STATUS_LEVEL,
)
from monitor.model.run_record import (
    EventSink as EventSink,
)
from monitor.model.run_record import (
    Level as Level,
)
from monitor.model.run_record import (
    MainMetricRule as MainMetricRule,
)
from monitor.model.run_record import (
    RunRecord as RunRecord,
)
from monitor.model.run_record import (  # re-exported: the registry's vocabulary
    RunStatus as RunStatus,
)
from monitor.model.run_record import (
    run_id_for as run_id_for,
)
from monitor.model.run_record import (
    valid_run_id as valid_run_id,
)


class RunChanges(NamedTuple):
    cursor: int
    runs: dict[str, list[str]]  # run id -> names of metrics with new points (may be empty)
    removed: list[str]  # ids of runs forgotten since the cursor


class RunRegistry:
    def __init__(
        self,
        events: EventSink | None = None,
        max_points: int = 100_000,
        forget_after_s: float = 86400.0,
        max_metrics: int = 1000,
        main_metric: Sequence[MainMetricRule] = (),
    ) -> None:
        self.events = events
        self.max_points = max_points
        self.forget_after_s = forget_after_s
        self.max_metrics = max_metrics
        self.main_metric_rules: list[MainMetricRule] = list(main_metric)
        self._runs: dict[str, RunRecord] = {}
        self._removed: deque[tuple[int, str]] = deque(maxlen=10_000)
        self._seq = 0
        self._lock = threading.RLock()

    def configure(
        self,
        max_points: int | None = None,
        forget_after_s: float | None = None,
        max_metrics: int | None = None,
        main_metric: Sequence[MainMetricRule] | None = None,
    ) -> None:
        with self._lock:
            if max_points is not None:
                self.max_points = max_points
            if forget_after_s is not None:
                self.forget_after_s = forget_after_s
            if max_metrics is not None:
                self.max_metrics = max_metrics
            if main_metric is not None:
                self.main_metric_rules = list(main_metric)

    def _touch(self, run: RunRecord) -> int:
        self._seq += 1
        run.seq = self._seq
        return self._seq

    def _event(self, level: Level, text: str) -> None:
        if self.events is not None:
            self.events.add(level, "runs", text)

    # -- writing (the runs collector) ------------------------------------------------------------
    def add_run(self, run_id: str, name: str, path: str, root: str, fmt: str, now: float | None = None,
                announce: bool = False) -> RunRecord:
        """Register a run (or return the existing one); `announce` logs "run started"."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                started = _time.time() if now is None else now
                run = self._runs[run_id] = RunRecord(run_id, name, path, root, fmt, started)
                run.note_status(started, "started", None)
                self._touch(run)
                if announce:
                    self._event("info", f"run started: {name} ({fmt})")
            elif run.format != fmt:
                run.format = fmt
                self._touch(run)
            return run

    def get(self, run_id: str) -> RunRecord | None:
        with self._lock:
            return self._runs.get(run_id)

    def update(self, run_id: str, **fields: Any) -> None:
        """Set summary fields (step, updated, total_steps, rate_steps_per_s, eta_s, writer_pids, gpus)."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                return
            changed = False
            for key, value in fields.items():
                if getattr(run, key) != value:
                    setattr(run, key, value)
                    changed = True
            if changed:
                self._touch(run)

    def merge_points(self, run_id: str, metric: str, steps: np.ndarray, times: np.ndarray, values: np.ndarray,
                     resumed: bool = False) -> bool:
        """Merge one metric's points (steps never decreasing) into a run; see MetricSeries.merge."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                return False
            series = run.metrics.get(metric)
            if series is None:
                if len(run.metrics) >= self.max_metrics:
                    run.dropped_metrics += 1
                    return False
                series = run.metrics[metric] = MetricSeries(metric, self.max_points)
            if not series.merge(steps, times, values, resumed):
                return False
            series.seq = self._touch(run)
            last = series.last_step
            if resumed:
                run.step = max((s.last_step for s in run.metrics.values() if s.last_step is not None), default=None)
            elif last is not None and (run.step is None or last > run.step):
                run.step = last
            return True

    def restart(self, run_id: str) -> None:
        """Forget what was read of a run (points, bad lines) before all of its files are read again."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                return
            for series in run.metrics.values():
                series.clear()
                series.seq = self._seq + 1
            run.bad_lines, run.first_bad_line, run.step = 0, None, None
            self._touch(run)

    def set_texts(self, run_id: str, texts: dict[str, str]) -> None:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                return
            changed = False
            for key, value in texts.items():
                if key not in run.texts and len(run.texts) >= MAX_TEXT_FIELDS:
                    continue
                value = value if len(value) <= MAX_TEXT_CHARS else value[: MAX_TEXT_CHARS - 1] + "…"
                if run.texts.get(key) != value:
                    run.texts[key] = value
                    changed = True
            if changed:
                self._touch(run)

    def set_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Replace a run's hyperparameters: nested mappings are flattened (`optim.lr`), values kept as
        scalars (run_params.py: bools, ints, finite floats; JSON text for lists), keys and texts shortened
        to MAX_PARAM_CHARS, at most MAX_PARAMS kept."""
        flat = flatten_params(params)
        with self._lock:
            run = self._runs.get(run_id)
            if run is None or run.params == flat:
                return
            run.params = flat
            self._touch(run)

    def set_files(self, run_id: str, files: Sequence[str]) -> None:
        with self._lock:
            run = self._runs.get(run_id)
            kept = [shorten(str(f), 4 * MAX_TEXT_CHARS) for f in list(files)[:MAX_FILES]]
            if run is None or run.files == kept:
                return
            run.files = kept
            self._touch(run)

    def note_bad_lines(self, run_id: str, count: int, file: str, line: int, reason: str) -> None:
        """Count `count` malformed lines; the first one ever seen on the run is kept and logged."""
        if count <= 0:
            return
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                return
            run.bad_lines += count
            if run.first_bad_line is None:
                run.first_bad_line = {"line": line, "reason": reason, "file": file}
                self._event("warning", f"run {run.name}: bad line {file}:{line}: {reason}")
            self._touch(run)

    def set_status(self, run_id: str, status: RunStatus, reason: str | None, announce: bool = True) -> bool:
        """Change a run's status; `announce` logs the transition. True when it changed."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is None or (run.status == status and run.status_reason == reason):
                return False
            previous = run.status
            run.status, run.status_reason = status, reason
            shown = "resumed" if status == "running" and previous in ("stalled", "crashed") else status
            run.note_status(_time.time(), shown, reason)
            if status == "deleted":
                run.deleted_at = run.deleted_at or _time.time()
            else:
                run.deleted_at = None
            self._touch(run)
            if announce and previous != status:
                if status == "running":
                    text = f"run {run.name} is running" + (" again" if previous in ("stalled", "crashed") else "")
                else:
                    text = f"run {run.name} {status}" + (f": {reason}" if reason else "")
                self._event(STATUS_LEVEL[status], text)
            return True

    def remove(self, run_id: str) -> bool:
        """Forget a run now (e.g. its directory became part of another run's layout)."""
        with self._lock:
            if self._runs.pop(run_id, None) is None:
                return False
            self._seq += 1
            self._removed.append((self._seq, run_id))
            return True

    def forget_expired(self, now: float | None = None) -> list[str]:
        """Forget runs deleted more than forget_after_s ago; returns their ids."""
        now = _time.time() if now is None else now
        with self._lock:
            expired = [
                r.id for r in self._runs.values()
                if r.deleted_at is not None and now - r.deleted_at > self.forget_after_s
            ]
            for run_id in expired:
                self.remove(run_id)
            return expired

    # -- reading (views) -------------------------------------------------------------------------
    @property
    def cursor(self) -> int:
        with self._lock:
            return self._seq

    def main_metric(self, run: RunRecord) -> str | None:
        names = sorted(run.metrics)
        if not names:
            return None
        for rule in self.main_metric_rules:
            if fnmatch.fnmatchcase(run.name, rule.run):
                if rule.metric in run.metrics:
                    return rule.metric
                matched = fnmatch.filter(names, rule.metric)
                if matched:
                    return matched[0]
        if "loss" in run.metrics:
            return "loss"
        losses = [n for n in names if "loss" in n.lower()]
        train = [n for n in losses if not n.lower().startswith(("eval", "val", "test"))]
        return (train or losses or names)[0]

    def summary(self, run_id: str) -> dict[str, Any] | None:
        with self._lock:
            run = self._runs.get(run_id)
            return run.summary(self.main_metric(run)) if run else None

    def detail(self, run_id: str) -> dict[str, Any] | None:
        with self._lock:
            run = self._runs.get(run_id)
            return run.detail(self.main_metric(run)) if run else None

    def __len__(self) -> int:
        """Runs known (deleted ones included, until forgotten)."""
        with self._lock:
            return len(self._runs)

    def summaries(self) -> list[dict[str, Any]]:
        """Every run, most recently updated first."""
        with self._lock:
            runs = sorted(self._runs.values(), key=lambda r: -(r.updated or r.started))
            return [r.summary(self.main_metric(r)) for r in runs]

    def latest(self) -> list[dict[str, Any]]:
        """Every run's identity, status and the latest value of each metric (/metrics): the cost
        grows with the number of runs and metrics, never with their history."""
        with self._lock:
            return [
                {"id": r.id, "name": r.name, "root": r.root, "status": r.status, "step": r.step,
                 "updated": r.updated, "bad_lines": r.bad_lines,
                 "metrics": {name: s.last_value() for name, s in r.metrics.items()}}
                for r in self._runs.values()
            ]

    def metric_names(self, run_id: str) -> list[str] | None:
        with self._lock:
            run = self._runs.get(run_id)
            return sorted(run.metrics) if run else None

    def read_metric_after(self, run_id: str, metric: str, cursor: int = 0) -> MetricRead | None:
        """Points of one metric not read yet (cursor 0: all); None for an unknown run or metric."""
        with self._lock:
            run = self._runs.get(run_id)
            series = run.metrics.get(metric) if run else None
            return series.read_after(cursor) if series else None

    def read_metric_arrays(self, run_id: str, metric: str) -> tuple[np.ndarray, np.ndarray, int] | None:
        """(steps, values, cursor) of every point of one metric as numpy copies: what a page draws
        first (downsampled), then continues with read_metric_after(cursor)."""
        with self._lock:
            run = self._runs.get(run_id)
            series = run.metrics.get(metric) if run else None
            if series is None:
                return None
            steps, _times, values = series.arrays()
            return steps, values, series.cursor

    def changed_after(self, cursor: int) -> RunChanges:
        with self._lock:
            runs = {
                r.id: [m for m, s in r.metrics.items() if s.seq > cursor]
                for r in self._runs.values() if r.seq > cursor
            }
            removed = [run_id for seq, run_id in self._removed if seq > cursor]
            return RunChanges(self._seq, runs, removed)

    def stats(self) -> dict[str, int]:
        with self._lock:
            series: Iterable[MetricSeries] = [s for r in self._runs.values() for s in r.metrics.values()]
            series = list(series)
            return {
                "runs": len(self._runs),
                "metrics": len(series),
                "points": sum(len(s) for s in series),
                "bytes": sum(s.nbytes for s in series),
                "cursor": self._seq,
            }

