"""What every run-file reader shares: `Parsed` (what a reader makes of new data: points per metric, text
fields, markers, bad lines), the `LineReader` base of line-by-line readers, the `SnapshotError` of
whole-file readers and the key names readers look for. Readers are stateful (a CSV header, a record
counter, tqdm's last step) and never touch the registry: the source that owns a reader applies its
`Parsed` result. A sibling of `formats/` and `sources.py`, so both import it without a cycle.
"""


from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

STEP_KEYS = ("step", "global_step", "_step", "trainer/global_step", "iteration", "iter", "steps")
TIME_KEYS = ("time", "timestamp", "wall_time", "walltime", "_timestamp")
TOTAL_KEYS = ("total_steps", "max_steps", "num_training_steps")
END_EVENTS = frozenset({"end", "finished", "finish", "done", "complete", "completed", "train_end"})
CRASH_EVENTS = frozenset({"crash", "crashed", "error", "failed", "failure", "exception"})
ParamValue = str | int | float | bool
MAX_PARAMS = 500  # hyperparameters kept per file read (the registry bounds them per run again)
MAX_PARAM_DEPTH = 8


def flatten_params(tree: object, prefix: str = "", out: dict[str, ParamValue] | None = None,
                   depth: int = 0) -> dict[str, ParamValue]:
    """Hyperparameters as flat `a.b` keys with str / int / float / bool values: nested maps are walked,
    lists and other values become their text, None becomes "null"; at most MAX_PARAMS keys."""
    out = {} if out is None else out
    if isinstance(tree, dict) and depth < MAX_PARAM_DEPTH:
        for key, value in tree.items():
            if len(out) >= MAX_PARAMS:
                break
            flatten_params(value, f"{prefix}.{key}" if prefix else str(key), out, depth + 1)
        return out
    if not prefix:
        return out
    if tree is None:
        out[prefix] = "null"
    elif isinstance(tree, bool | int | float | str):
        out[prefix] = tree if not (isinstance(tree, float) and not math.isfinite(tree)) else str(tree)
    else:
        out[prefix] = str(tree)
    return out


def as_timestamp(value: float) -> float | None:
    """A Unix time in seconds from seconds or milliseconds; None when the number is not a timestamp."""
    if 1e9 <= value < 1e10:
        return float(value)
    if 1e12 <= value < 1e13:
        return value / 1000.0
    return None


def integral_step(value: object) -> int | None:
    if type(value) is int:
        return value
    if type(value) is float and math.isfinite(value):
        return int(value)
    return None


def not_finite_reason(key: str, value: float) -> str:
    return f"{key!r} is {'NaN' if math.isnan(value) else 'infinite'}"


@dataclass(slots=True)
class Marker:
    kind: Literal["end", "crash"]
    reason: str
    line: int | None = None
    step: int | None = None
    after_records: int = 0  # records of the same batch read before the marker


@dataclass
class Parsed:
    file: str = ""
    texts: dict[str, str] = field(default_factory=dict)
    bad: int = 0
    first_bad: tuple[int, str] | None = None
    markers: list[Marker] = field(default_factory=list)
    total: int | None = None
    total_is_end: bool = False  # reaching `total` means the run finished (HF max_steps, a declared total)
    progress: list[tuple[float, int]] = field(default_factory=list)  # (time, step), in record order
    records: int = 0
    resumed: bool = False  # a step went backwards (resume from a checkpoint): stored later points dropped
    params: dict[str, ParamValue] = field(default_factory=dict)  # hyperparameters read (flattened `a.b` keys)
    _lists: dict[str, tuple[list[int], list[float], list[float]]] = field(default_factory=dict)
    _arrays: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = field(default_factory=dict)

    def add_marker(self, kind: Literal["end", "crash"], reason: str, line: int | None, step: int | None,
                   after_records: int | None = None) -> None:
        self.markers.append(Marker(kind, reason, line, step, self.records if after_records is None else after_records))

    def add_bad(self, line: int, reason: str) -> None:
        self.bad += 1
        if self.first_bad is None or line < self.first_bad[0]:
            self.first_bad = (line, reason)

    def add_point(self, metric: str, step: int, time: float, value: float) -> None:
        lists = self._lists.get(metric)
        if lists is None:
            lists = self._lists[metric] = ([], [], [])
            self._flush_order(metric)
        lists[0].append(step)
        lists[1].append(time)
        lists[2].append(value)

    def add_points(self, metric: str, steps: np.ndarray, times: np.ndarray, values: np.ndarray) -> None:
        if len(steps):
            self._flush_order(metric)
            self._arrays.setdefault(metric, []).append((steps, times, values))

    def _flush_order(self, metric: str) -> None:
        # Lists gathered so far come before arrays added now: move them into the array chunks.
        lists = self._lists.get(metric)
        if lists and lists[0]:
            self._arrays.setdefault(metric, []).append(
                (np.array(lists[0], np.int64), np.array(lists[1], np.float64), np.array(lists[2], np.float64))
            )
            self._lists[metric] = ([], [], [])

    def points(self) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Every metric's points in the order they were read."""
        for metric in list(self._lists):
            self._flush_order(metric)
        out = {}
        for metric, chunks in self._arrays.items():
            if len(chunks) == 1:
                out[metric] = chunks[0]
            else:
                out[metric] = (
                    np.concatenate([c[0] for c in chunks]),
                    np.concatenate([c[1] for c in chunks]),
                    np.concatenate([c[2] for c in chunks]),
                )
        return out

    @property
    def has_points(self) -> bool:
        return bool(self._arrays) or any(lists[0] for lists in self._lists.values())


class LineReader:
    """Reads a file that grows by lines; the tail hands it complete lines (number, bytes)."""

    def reset(self) -> None:
        """The file was truncated or replaced: start over."""

    reads_blocks = False  # True: the tail hands plain lines over as one block (`read_block`)

    def read(self, lines: Sequence[tuple[int, bytes]], mtime: float, parsed: Parsed) -> None:
        raise NotImplementedError

    def read_block(self, first_line: int, block: bytes, mtime: float, parsed: Parsed) -> None:
        """Complete lines joined by \n, the first numbered `first_line` (see collectors/runs/tailer.py)."""
        self.read(numbered_lines(first_line, block), mtime, parsed)

    def unterminated(self, line: tuple[int, bytes], mtime: float, parsed: Parsed) -> None:
        """A last line that never got its newline (the writer stopped mid-line): read it as it is."""
        self.read([line], mtime, parsed)


def numbered_lines(first_line: int, block: bytes) -> list[tuple[int, bytes]]:
    lines = block.split(b"\n")
    return list(zip(range(first_line, first_line + len(lines)), lines, strict=True))


class SnapshotError(ValueError):
    """A whole-file snapshot that cannot be read (yet: a writer may be rewriting it in place)."""

    def __init__(self, reason: str, line: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line
