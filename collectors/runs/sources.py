"""The files of a run, each with its reader: poll for what is new and merge its points into the registry.

Two ways to merge, as TensorBoard does:
- streamed files (JSONL, CSV, text logs, event files) are read in order; when a metric's step goes
  backwards (a resume from a checkpoint) the stored points at or after that step are dropped,
  unless the stored point there is the same (the file was re-read after a truncation, replacement
  or rewrite: nothing is duplicated);
- whole-file snapshots (trainer_state.json) are merged by step: a step already stored is kept
  when the value agrees, replaced otherwise, missing steps are inserted.
"""

from __future__ import annotations

import os
from itertools import pairwise

import numpy as np

from collectors.runs.discovery import RunLayout
from collectors.runs.formats import Parsed
from collectors.runs.formats.csv_table import CsvReader
from collectors.runs.formats.hf_trainer import TrainerStateError, read_trainer_state
from collectors.runs.formats.jsonl import JsonlReader
from collectors.runs.formats.text_log import TextLogReader
from collectors.runs.formats.tfevents import EventFileReader, Rename, hf_tag
from collectors.runs.tailer import FileTail, WholeFile
from monitor.model.run_registry import RunRegistry

HALF_WRITTEN_GRACE_S = 60.0  # a whole-file JSON still invalid after this long unchanged is counted bad

Points = dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]


def merge_streamed(registry: RunRegistry, run_id: str, points: Points, last_steps: dict[str, int]) -> bool:
    """Merge a streamed batch; True when a step went backwards (a resume) and later points were dropped."""
    resumed_any = False
    for metric, (steps, times, values) in points.items():
        previous = last_steps.get(metric)
        cuts = (np.flatnonzero(np.diff(steps) < 0) + 1).tolist() if len(steps) > 1 else []
        for start, end in pairwise([0, *cuts, len(steps)]):
            resumed = start > 0 or (previous is not None and int(steps[start]) < previous)
            series = registry.get(run_id)
            before = series.metrics.get(metric) if series else None
            generation = before.generation if before is not None else 0
            registry.merge_points(run_id, metric, steps[start:end], times[start:end], values[start:end],
                                  resumed=resumed)
            if resumed and before is not None and before.generation != generation:
                resumed_any = True
        last_steps[metric] = int(steps[-1])
    return resumed_any


def merge_snapshot(registry: RunRegistry, run_id: str, points: Points) -> bool:
    changed = False
    for metric, (steps, times, values) in points.items():
        order = np.argsort(steps, kind="stable")
        changed |= registry.merge_points(run_id, metric, steps[order], times[order], values[order])
    return changed


class Source:
    """One file (or group of files) of a run."""

    kind = "file"

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = os.path.basename(path)
        self.more = False  # unread data remains: poll again next tick
        self.retry_at: float | None = None  # poll again at this time even without a change
        self.error: str | None = None
        self.mtime = 0.0  # newest modification time seen
        self.polled = False

    def paths(self) -> list[str]:
        return [self.path]

    def poll(self, registry: RunRegistry, run_id: str, now: float) -> Parsed | None:
        raise NotImplementedError


class LineSource(Source):
    """A file that grows by lines: JSONL, CSV or a text log."""

    def __init__(self, path: str, kind: str, max_line_bytes: int, metrics: bool = True, hf: bool = False,
                 unterminated_s: float = 60.0) -> None:
        super().__init__(path)
        self.kind = kind
        self.unterminated_s = unterminated_s
        self.tail = FileTail(path, max_line_bytes=max_line_bytes, split_cr=kind == "text")
        self.reader: JsonlReader | CsvReader | TextLogReader
        if kind == "jsonl":
            self.reader = JsonlReader()
        elif kind == "csv":
            self.reader = CsvReader()
        else:
            self.reader = TextLogReader(metrics=metrics, hf=hf)
        self.last_steps: dict[str, int] = {}

    def poll(self, registry: RunRegistry, run_id: str, now: float) -> Parsed | None:
        chunk = self.tail.poll()
        self.polled = True
        self.retry_at = None
        if chunk is None:
            self.more = False
            return self._unterminated(now)
        self.more = chunk.more
        self.mtime = max(self.mtime, chunk.mtime)
        if chunk.reset:
            self.reader.reset()
        parsed = Parsed(file=self.name)
        for line in chunk.overlong:
            parsed.add_bad(line, f"line longer than {self.tail.max_line_bytes} bytes (skipped)")
        if chunk.lines:
            self.reader.read(chunk.lines, min(chunk.mtime, now), parsed)
        if parsed.has_points:
            parsed.resumed = merge_streamed(registry, run_id, parsed.points(), self.last_steps)
        if self.tail.pending:
            self.retry_at = self.tail.pending_since + self.unterminated_s
        return parsed

    def _unterminated(self, now: float) -> Parsed | None:
        """A partial last line unchanged for unterminated_s: the writer stopped mid-line; read it as it is."""
        if not self.tail.pending:
            return None
        if now - self.tail.pending_since < self.unterminated_s:
            self.retry_at = self.tail.pending_since + self.unterminated_s
            return None
        line = self.tail.take_unterminated()
        if line is None:
            return None
        parsed = Parsed(file=self.name)
        if isinstance(self.reader, TextLogReader):
            self.reader.unterminated(line[0], line[1], parsed)
        else:
            self.reader.read([line], min(now, self.tail.mtime_ns / 1e9), parsed)
        return parsed


class TrainerStateSource(Source):
    """HF Trainer's trainer_state.json files (the output dir's and each checkpoint-N's), merged by step."""

    kind = "trainer_state"

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.files: dict[str, WholeFile] = {}
        self.invalid_since: dict[str, float] = {}
        self.reported: set[str] = set()
        self.info: dict[str, object] = {}

    def set_paths(self, paths: list[str]) -> None:
        for path in paths:
            self.files.setdefault(path, WholeFile(path))
        for path in list(self.files):
            if path not in paths:
                del self.files[path]

    def paths(self) -> list[str]:
        return list(self.files)

    def poll(self, registry: RunRegistry, run_id: str, now: float) -> Parsed | None:
        result: Parsed | None = None
        self.retry_at = None
        self.polled = True
        # Newest checkpoint last: its log_history is the most complete.
        for path in sorted(self.files, key=_checkpoint_number):
            whole = self.files[path]
            try:
                read = whole.read_if_changed()
            except FileNotFoundError:
                continue
            if read is None:
                continue
            data, mtime = read
            self.mtime = max(self.mtime, mtime)
            parent = os.path.basename(os.path.dirname(path))
            parsed = Parsed(file=f"{parent}/trainer_state.json" if parent.startswith("checkpoint-")
                            else "trainer_state.json")
            try:
                self.info = read_trainer_state(data, min(mtime, now), parsed)
            except TrainerStateError as exc:
                # Half-written (HF rewrites it in place): read it again shortly; bad only if it stays so.
                whole.retry()
                since = self.invalid_since.setdefault(path, now)
                if now - since < HALF_WRITTEN_GRACE_S or path in self.reported:
                    self.retry_at = now + 0.5 if now - since < HALF_WRITTEN_GRACE_S else None
                    continue
                self.reported.add(path)
                parsed.add_bad(exc.line, f"{exc.reason} (unchanged for {HALF_WRITTEN_GRACE_S:.0f} s)")
                result = parsed
                continue
            whole.accept()
            self.invalid_since.pop(path, None)
            self.reported.discard(path)
            merge_snapshot(registry, run_id, parsed.points())
            result = parsed if result is None else _combine(result, parsed)
        return result


def _checkpoint_number(path: str) -> int:
    parent = os.path.basename(os.path.dirname(path))
    if parent.startswith("checkpoint-") and parent[11:].isdigit():
        return int(parent[11:])
    return 1 << 62  # the output dir's own trainer_state.json is the final one


def _combine(first: Parsed, second: Parsed) -> Parsed:
    second.bad += first.bad
    second.first_bad = first.first_bad or second.first_bad
    second.markers = first.markers + second.markers
    second.texts = {**first.texts, **second.texts}
    second.progress = first.progress + second.progress
    second.records += first.records
    return second


class EventFilesSource(Source):
    """The event files of one run, read in name order as one stream (as TensorBoard does)."""

    kind = "tfevents"

    def __init__(self, path: str, rename: Rename | None = None) -> None:
        super().__init__(path)
        self.name = "event files"
        self.rename = rename
        self.readers: dict[str, EventFileReader] = {}
        self.last_steps: dict[str, int] = {}

    def set_paths(self, paths: list[str]) -> None:
        for path in paths:
            if path not in self.readers:
                self.readers[path] = EventFileReader(path, self.rename)
        for path in list(self.readers):
            if path not in paths:
                del self.readers[path]

    def paths(self) -> list[str]:
        return list(self.readers)

    def poll(self, registry: RunRegistry, run_id: str, now: float) -> Parsed | None:
        parsed = Parsed(file=self.name)
        self.more = False
        self.polled = True
        changed = False
        for path in sorted(self.readers, key=lambda p: (os.path.basename(p), p)):
            reader = self.readers[path]
            before = reader.events
            try:
                _, more = reader.poll(parsed)
            except FileNotFoundError:
                continue
            self.more |= more
            if reader.events != before:
                changed = True
                self.mtime = max(self.mtime, reader.mtime)
        if parsed.has_points:
            parsed.resumed = merge_streamed(registry, run_id, parsed.points(), self.last_steps)
        return parsed if changed else None


def sources_for(layout: RunLayout, existing: dict[str, Source], max_line_bytes: int,
                unterminated_s: float) -> dict[str, Source]:
    """The sources a run layout needs, keyed by path (groups: run dir + "#kind"); existing ones are kept."""
    hf = layout.format == "hf_trainer"
    wanted: dict[str, Source] = {}
    for path in layout.jsonl:
        wanted[path] = existing.get(path) or LineSource(path, "jsonl", max_line_bytes, unterminated_s=unterminated_s)
    for path in layout.csv:
        wanted[path] = existing.get(path) or LineSource(path, "csv", max_line_bytes, unterminated_s=unterminated_s)
    for path in layout.text:  # metrics from a log only where it is the run's own record (plain text, HF stdout)
        wanted[path] = existing.get(path) or LineSource(
            path, "text", max_line_bytes, metrics=layout.format in ("text", "hf_trainer"), hf=hf,
            unterminated_s=unterminated_s,
        )
    if layout.tfevents:
        group = existing.get(layout.path + "#tfevents")
        if not isinstance(group, EventFilesSource):
            group = EventFilesSource(layout.path, rename=hf_tag if hf else None)
        group.set_paths(layout.tfevents)
        wanted[layout.path + "#tfevents"] = group
    if layout.trainer_state:
        states = existing.get(layout.path + "#trainer_state")
        if not isinstance(states, TrainerStateSource):
            states = TrainerStateSource(layout.path)
        states.set_paths(layout.trainer_state)
        wanted[layout.path + "#trainer_state"] = states
    return wanted
