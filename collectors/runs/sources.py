"""How a run's files are read: sources that poll for what is new and merge its points into the registry.

These are the generic sources a format's `FileKind` opens (collectors/runs/format_spec.py); a format
with its own way of reading (TensorBoard's event files) subclasses `GroupSource` in its module.
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
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

import numpy as np

from collectors.runs.parsed import LineReader, ParamValue, Parsed, SnapshotError
from collectors.runs.tailer import FileTail, WholeFile
from monitor.model.run_registry import RunRegistry

MergeMode = Literal["streamed", "snapshot"]
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


@dataclass(frozen=True)
class SourceSettings:
    """The runs config a source needs."""

    max_line_bytes: int
    unterminated_s: float = 60.0


class Source:
    """One file (or group of files) of a run."""

    mode: MergeMode = "streamed"

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


class GroupSource(Source):
    """Several files of a run read as one (keyed by the run dir + "#" + the file kind); discovery sets the files."""

    def set_paths(self, paths: list[str]) -> None:
        raise NotImplementedError


class LineSource(Source):
    """A file that grows by lines (JSONL, CSV, a text log), read by a format's `LineReader`."""

    def __init__(self, path: str, reader: LineReader, settings: SourceSettings, split_cr: bool = False) -> None:
        super().__init__(path)
        self.unterminated_s = settings.unterminated_s
        self.tail = FileTail(path, max_line_bytes=settings.max_line_bytes, split_cr=split_cr,
                             blocks=reader.reads_blocks)
        self.reader = reader
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
        if chunk.block_lines:
            self.reader.read_block(chunk.first_line, chunk.block, min(chunk.mtime, now), parsed)
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
        self.reader.unterminated(line, min(now, self.tail.mtime_ns / 1e9), parsed)
        return parsed


SnapshotReader = Callable[[bytes, float, Parsed], object]  # (data, mtime, parsed); raises SnapshotError


class SnapshotSource(GroupSource):
    """Whole files rewritten in place (HF's trainer_state.json, a JSON summary), re-read when changed, merged by step.

    A file that cannot be read (`SnapshotError`) is read again shortly: a writer may be half-way through
    rewriting it; it counts as bad only once it stays so for HALF_WRITTEN_GRACE_S.
    """

    mode: MergeMode = "snapshot"

    def __init__(self, run_dir: str, read: SnapshotReader, order: Callable[[str], object] = str) -> None:
        super().__init__(run_dir)
        self.read = read
        self.order = order  # the files are read in this order (the most complete last)
        self.files: dict[str, WholeFile] = {}
        self.invalid_since: dict[str, float] = {}
        self.reported: set[str] = set()

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
        for path in sorted(self.files, key=self.order):
            whole = self.files[path]
            try:
                read = whole.read_if_changed()
            except FileNotFoundError:
                continue
            if read is None:
                continue
            data, mtime = read
            self.mtime = max(self.mtime, mtime)
            parsed = Parsed(file=os.path.relpath(path, self.path))
            try:
                self.read(data, min(mtime, now), parsed)
            except SnapshotError as exc:
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


def _combine(first: Parsed, second: Parsed) -> Parsed:
    second.bad += first.bad
    second.first_bad = first.first_bad or second.first_bad
    second.markers = first.markers + second.markers
    second.texts = {**first.texts, **second.texts}
    second.progress = first.progress + second.progress
    second.records += first.records
    second.params = {**first.params, **second.params}
    return second


ParamsReader = Callable[[str, bytes], dict[str, ParamValue]]  # (path, data) -> flat params; ValueError if unreadable


class ParamsSource(GroupSource):
    """A run's hyperparameter files (hparams.yaml, config.yaml, params/, params.json...), re-read when changed;
    each poll that read something gives every file's params together (`Parsed.params`). A file that cannot
    be read (half-written) keeps what was read of it before and is read again on its next change."""

    def __init__(self, run_dir: str, read: ParamsReader) -> None:
        super().__init__(run_dir)
        self.name = "hyperparameters"
        self.read = read
        self.files: dict[str, WholeFile] = {}
        self.values: dict[str, dict[str, ParamValue]] = {}

    def set_paths(self, paths: list[str]) -> None:
        for path in paths:
            self.files.setdefault(path, WholeFile(path))
        for path in [p for p in self.files if p not in paths]:
            del self.files[path]
            self.values.pop(path, None)

    def paths(self) -> list[str]:
        return list(self.files)

    def poll(self, registry: RunRegistry, run_id: str, now: float) -> Parsed | None:
        self.polled = True
        changed = False
        for path in sorted(self.files):
            whole = self.files[path]
            try:
                read = whole.read_if_changed()
            except FileNotFoundError:
                continue
            if read is None:
                continue
            whole.accept()
            try:
                self.values[path] = self.read(path, read[0])
            except (ValueError, UnicodeDecodeError):
                continue
            changed = True
        if not changed:
            return None
        parsed = Parsed(file=self.name)
        for path in sorted(self.values):
            parsed.params.update(self.values[path])
        return parsed
