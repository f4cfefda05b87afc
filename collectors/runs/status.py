"""A run's status from its files and its writer process, and its step rate and ETA.

Rules (README, "Training runs"), first match wins:
1. `deleted`: the run's directory (or every run file in it) is gone; listed greyed until
   runs.forget_after_s.
2. `crashed`: the newest marker is a crash: a Python traceback (reason: its final exception line),
   a CUDA/OOM/NCCL error, segfault or `Killed` line in a log, a JSONL `{"event": "crash"}`, or the
   process that had a run file open for writing exited before the run finished.
   In a layout that records no end (`RunFormat.records_end` False: Lightning CSV, TensorBoard, CSV,
   SB3, DVCLive, Ray Tune, W&B files) a writer that exits is the run's end instead (rule 3).
3. `finished`: the newest marker is an end: HF's final `train_runtime` (stdout dict or
   log_history), a JSONL `{"event": "end"}`, MLflow's meta.yaml FINISHED, Ray's `done`, or the writer
   of a layout that records no end exited; or the step reached a declared total (HF `max_steps`,
   JSONL `total_steps`/`max_steps`).
4. `finished` ("ended"): a run found on disk that no process writes and that labwall never saw
   progress (no new data since it was found), once its files are older than the stall limit: an
   old run that ended before labwall looked, whatever the reason.
5. `stalled`: no file of the run changed for max(runs.stall_factor x its median interval between
   new steps, runs.stall_min_s) (defaults: 10x, 120 s), for a run seen progressing or written.
6. `running`: otherwise.
A marker is cleared by later progress: a step beyond the marker's step, a resume (a step going
backwards), or for a crash, new records after it in the same file.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass
from itertools import pairwise

from collectors.runs.parsed import Marker, Parsed
from monitor.model.run_registry import RunStatus

RATE_WINDOW_S = 300.0


@dataclass(slots=True)
class StatusRules:
    stall_factor: float = 10.0
    stall_min_s: float = 120.0


@dataclass(slots=True)
class ActiveMarker:
    marker: Marker
    source: str  # path of the file it came from ("" for the writer-process rule)
    label: str = ""  # that file's name, for the reason shown


class RunProgress:
    """What the collector knows about one run beyond its points: markers, progress, activity, writers."""

    def __init__(self) -> None:
        self.marker: ActiveMarker | None = None
        self.progress: deque[tuple[float, int]] = deque(maxlen=128)  # (time, step) of new steps
        self.last_activity: float = 0.0  # newest modification time of any run file
        self.total: int | None = None
        self.total_is_end = False
        self.step: int | None = None
        self.writers: dict[int, tuple[float, str]] = {}  # pid -> (create time, name)
        self.records_end = True  # the run's layout says when it ended (else a writer exiting is its end)
        self.seen_live = False  # new data came while labwall watched (not only what was on disk when found)

    def apply(self, parsed: Parsed, source: str, run_step: int | None) -> None:
        """Fold one source's batch in; `run_step` is the run's step after its points were merged."""
        if parsed.total is not None and (parsed.total_is_end or not self.total_is_end):
            self.total, self.total_is_end = parsed.total, parsed.total_is_end
        steps_seen = [s for _, s in parsed.progress]
        newest = max(steps_seen) if steps_seen else None
        active = self.marker
        if active is not None and (parsed.records or parsed.resumed):
            m = active.marker
            beyond = newest is not None and m.step is not None and newest > m.step
            crash_then_data = m.kind == "crash" and (active.source in (source, "")) and parsed.records > 0
            if beyond or parsed.resumed or crash_then_data:
                self.marker = None
        for marker in parsed.markers:
            if marker.step is None:
                marker.step = newest if newest is not None else run_step
            self.marker = ActiveMarker(marker, source, parsed.file)
        if parsed.markers:
            last = parsed.markers[-1]
            went_on = parsed.records > last.after_records and (
                last.kind == "crash" or (newest is not None and last.step is not None and newest > last.step)
            )
            if went_on:
                self.marker = None  # the run went on after the marker within the same batch
        if parsed.resumed:
            self.progress.clear()  # a resume: the rate starts over
        for when, step in parsed.progress:
            if self.progress and step <= self.progress[-1][1]:
                continue
            self.progress.append((when, step))
        latest = self.progress[-1][1] if self.progress else None
        known = [s for s in (run_step, latest) if s is not None]
        self.step = max(known) if known else None

    def writer_exited(self, pid: int, name: str) -> None:
        self.writers.clear()
        if self.marker is not None and self.marker.marker.kind == "end":
            return
        if self.total_is_end and self.total and self.step is not None and self.step >= self.total:
            return
        if not self.records_end:
            marker = Marker("end", f"writer process {pid} ({name}) exited; this layout records no end", None, None)
        else:
            marker = Marker("crash", f"writer process {pid} ({name}) exited before the run finished", None, None)
        self.marker = ActiveMarker(marker, "")

    def cadence(self) -> float | None:
        """Median seconds between new steps (None until known)."""
        times = [t for t, _ in self.progress]
        gaps = [b - a for a, b in pairwise(times) if b > a]
        return statistics.median(gaps) if gaps else None

    def stall_after(self, rules: StatusRules) -> float:
        cadence = self.cadence()
        return max(rules.stall_factor * cadence, rules.stall_min_s) if cadence else rules.stall_min_s

    def rate(self) -> float | None:
        """Steps per second over the recent progress (the last RATE_WINDOW_S s of it)."""
        if len(self.progress) < 2:
            return None
        t1, s1 = self.progress[-1]
        first = next(((t, s) for t, s in self.progress if t >= t1 - RATE_WINDOW_S), self.progress[0])
        t0, s0 = first
        if t1 <= t0 or s1 <= s0:
            return None
        return (s1 - s0) / (t1 - t0)

    def derive(self, now: float, rules: StatusRules) -> tuple[RunStatus, str | None]:
        active = self.marker
        if active is not None:
            m = active.marker
            where = f" ({active.label}:{m.line})" if active.label and m.line else ""
            return ("crashed" if m.kind == "crash" else "finished"), m.reason + where
        if self.total_is_end and self.total and self.step is not None and self.step >= self.total:
            return "finished", f"step {self.step} reached the total of {self.total}"
        limit = self.stall_after(rules)
        if self.last_activity and now - self.last_activity > limit:
            if not self.seen_live and not self.writers:
                age = _age(now - self.last_activity)
                return "finished", f"ended before labwall found it: no file changed for {age}"
            return "stalled", f"no new data for more than {limit:.0f} s"
        return "running", None

    def eta(self, status: RunStatus) -> tuple[float | None, float | None]:
        """(rate in steps/s, ETA in s); the ETA only while running with a known total."""
        rate = self.rate()
        if status != "running" or rate is None or not self.total or self.step is None:
            return (round(rate, 4) if rate is not None and status == "running" else None), None
        return round(rate, 4), round(max(0.0, (self.total - self.step) / rate), 1)


def _age(seconds: float) -> str:
    for unit, size in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"
