"""JSON Lines: one JSON object per line (`metrics.jsonl`).

Numbers are metrics; strings and booleans are text fields (latest value) unless the key holds
numbers elsewhere in the file (then a numeric string such as "0.5" is taken as the number and any
other value makes the line bad); a nested object is flattened one level
(`{"train": {"loss": 1}}` -> `train/loss`). `step` (or global_step, iteration, ...) gives the step
(a non-negative integer; a float is truncated, a numeric string accepted), else the step of the
record before, else the record's position in the file; `time` (or timestamp, wall_time) a Unix
time in s or ms, else the file's modification time. Records with an `event` key carry no points:
`{"event": "end"}` marks the run finished, `{"event": "crash"}` crashed; `total_steps` /
`max_steps` give the total; `{"event": "config", ...}` (or params/hparams) gives the run's
hyperparameters (its other keys, nested ones flattened to `a.b`).

A bad line (invalid JSON, not an object, not UTF-8, a NaN or infinite value, a step that is
negative or too large, a non-number where numbers are logged) is counted and skipped whole. A batch
of clean lines is parsed with one `orjson.loads` call (about 2x faster than `json.loads`, 6x
faster than line by line); any failure falls back to one `json.loads` call, then to line by line
to find the bad ones. orjson reads two things differently from `json` (an integer beyond 64 bits
becomes a float; nesting up to 1024 levels is accepted where `json` stops near 1000): a batch
where either could matter (a float step beyond 2**63, any list or nested object below the one
flattened level) is parsed again with `json`, so every line keeps the outcome `json` gives it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np

from collectors.runs.format_spec import FileKind, Listing, Match, RunFormat
from collectors.runs.formats import jsonl_batch
from collectors.runs.formats.jsonl_batch import load_records
from collectors.runs.parsed import (
    CRASH_EVENTS,
    END_EVENTS,
    STEP_KEYS,
    TIME_KEYS,
    TOTAL_KEYS,
    LineReader,
    Parsed,
    as_timestamp,
    flatten_params,
    not_finite_reason,
    numbered_lines,
)
from collectors.runs.sources import LineSource

MAX_STEP = 2**62
CONFIG_EVENTS = frozenset({"config", "params", "hparams", "hyperparameters"})
INT64_LIMIT = 2.0**63  # orjson turns integers beyond 64 bits into floats
Column = tuple[np.ndarray, np.ndarray]  # (record indices, values)


class _Inexact(Exception):
    """orjson may have read this batch differently from `json` (see the module doc): parse it with `json`."""


def _short(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


class JsonlReader(LineReader):
    def __init__(self) -> None:
        self.ordinal = 0  # records read so far: the step of a record without one...
        self.last_step: int | None = None  # ...unless an earlier record had a step: then that one
        self.numeric_keys: set[str] = set()

    def reset(self) -> None:
        self.ordinal = 0
        self.last_step = None

    reads_blocks = True

    def read(self, lines: Sequence[tuple[int, bytes]], mtime: float, parsed: Parsed) -> None:
        records, numbers, exact = load_records(lines, parsed)
        self._take(records, numbers, exact, lambda: lines, mtime, parsed)

    def read_block(self, first_line: int, block: bytes, mtime: float, parsed: Parsed) -> None:
        records = jsonl_batch.orjson_block(block)
        if records is None:
            self.read(numbered_lines(first_line, block), mtime, parsed)
            return
        self._take(records, range(first_line, first_line + len(records)), False,
                   lambda: numbered_lines(first_line, block), mtime, parsed)

    def _take(self, records: list[dict[str, Any]], numbers: Sequence[int], exact: bool,
              lines: Callable[[], Sequence[tuple[int, bytes]]], mtime: float, parsed: Parsed) -> None:
        if not records:
            return
        try:
            batch = _Batch(records, numbers, self.ordinal, self.last_step, mtime, self.numeric_keys, exact)
            batch.check()
        except _Inexact:
            records, numbers, exact = load_records(lines(), parsed, fast=False)
            if not records:
                return
            batch = _Batch(records, numbers, self.ordinal, self.last_step, mtime, self.numeric_keys, exact)
            batch.check()
        self.last_step = batch.into(parsed)
        self.numeric_keys = batch.numeric_keys
        self.ordinal += len(records)


def _is_config(event: Any) -> bool:
    return type(event) is str and event.strip().lower() in CONFIG_EVENTS


def _as_number(value: Any) -> float | None:
    kind = type(value)
    if kind is int or kind is float:
        try:
            return float(value)
        except OverflowError:
            return math.inf
    if kind is str:
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _record_columns(records: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Each key's values over the records (None where a record lacks the key), keys in first-seen order."""
    first = records[0]
    if sum(map(len, records)) == len(first) * len(records):
        try:  # every record has the first one's keys (the usual log): no per-record .get
            return {key: list(map(itemgetter(key), records)) for key in first}
        except KeyError:
            pass
    return {key: [r.get(key) for r in records] for key in dict.fromkeys(chain.from_iterable(records))}


class _Batch:
    """Turns a batch of records into columns of points, keeping whole bad records out.

    `check()` reads the records (and raises `_Inexact` for what orjson may read differently) without
    changing anything; `into()` then hands the result to `Parsed`.
    """

    def __init__(self, records: list[dict[str, Any]], numbers: Sequence[int], ordinal: int, last_step: int | None,
                 mtime: float, numeric_keys: set[str], exact: bool = True) -> None:
        self.records = records
        self.numbers = numbers
        self.n = len(records)
        self.ordinal = ordinal
        self.last_step = last_step
        self.mtime = mtime
        self.numeric_keys = set(numeric_keys)  # the reader takes this copy once the batch is read
        self.exact = exact  # read by json (not orjson): nothing to check
        self.bad: dict[int, str] = {}
        self.columns: dict[str, Column] = {}
        self.texts: dict[str, str] = {}
        self.total: int | None = None
        self.events: list[Any] | None = None
        self.steps = np.empty(0, np.int64)
        self.times = np.empty(0, np.float64)
        self.step_key: str | None = None

    def _inexact(self, value: Any) -> None:
        if not self.exact and (type(value) is list or type(value) is dict):
            raise _Inexact  # a nesting json may refuse (RecursionError) where orjson reads it

    def check(self) -> None:
        columns = _record_columns(self.records)
        configs = [i for i, event in enumerate(columns.get("event") or ()) if _is_config(event)]
        for key, column in columns.items():  # a config record's keys are hyperparameters, not metric values
            if key != "event":
                for i in configs:
                    column[i] = None
        self.steps, self.step_key = self._steps(columns)
        self.times, time_key = self._times(columns)
        for key, column in columns.items():
            if key not in (self.step_key, time_key, "event"):
                self._column(key, column)
        self.events = columns.get("event")
        if self.events is not None and not self.exact:
            for value in self.events:
                self._inexact(value)

    def into(self, parsed: Parsed) -> int | None:
        steps, times = self.steps, self.times
        keep = np.ones(self.n, bool)
        if self.bad:
            keep[list(self.bad)] = False
        if self.events is not None:
            for i, value in enumerate(self.events):
                if value is not None:
                    keep[i] = False  # an event record is not a metric record
                    if type(value) is str and i not in self.bad:
                        _event(value, self.numbers[i], int(steps[i]), parsed, parsed.records + int(keep[:i].sum()))
                        self.texts["event"] = value
                        if value.strip().lower() in CONFIG_EVENTS:
                            config = {k: v for k, v in self.records[i].items() if k != "event"}
                            flatten_params(config, out=parsed.params)
        for key, (index, values) in self.columns.items():
            chosen = keep[index]
            if chosen.any():
                index = index[chosen]
                parsed.add_points(key, steps[index], times[index], values[chosen])
        kept = np.flatnonzero(keep)
        parsed.records += len(kept)
        parsed.progress.extend(zip(times[kept[-64:]].tolist(), steps[kept[-64:]].tolist(), strict=True))
        parsed.texts.update(self.texts)
        if self.total is not None:
            parsed.total, parsed.total_is_end = self.total, True
        for i in sorted(self.bad):
            parsed.add_bad(self.numbers[i], self.bad[i])
        if self.step_key is None and self.last_step is None:
            return None
        last_valid = next((i for i in range(self.n - 1, -1, -1) if i not in self.bad), None)
        return int(steps[last_valid]) if last_valid is not None else self.last_step

    def _steps(self, columns: dict[str, list[Any]]) -> tuple[np.ndarray, str | None]:
        key = next((k for k in STEP_KEYS if k in columns), None)
        if key is None:
            if self.last_step is not None:
                return np.full(self.n, self.last_step, np.int64), None
            return np.arange(self.ordinal, self.ordinal + self.n, dtype=np.int64), None
        column = columns[key]
        if set(map(type, column)) == {int}:
            try:
                values = np.array(column, np.float64)
            except OverflowError:
                values = np.array([-1.0])
            if np.all((values >= 0) & (values < MAX_STEP)):
                return values.astype(np.int64), key
        steps: list[int] = []
        last = self.last_step
        for i, value in enumerate(column):
            step: int | None = None
            if value is not None:
                self._inexact(value)
                if not self.exact and type(value) is float and abs(value) >= INT64_LIMIT:
                    raise _Inexact  # perhaps an integer json keeps whole (the message shows its digits)
                number = _as_number(value) if type(value) is not bool else None
                if number is None or not math.isfinite(number):
                    self.bad[i] = f"{key!r} is not a number: {_short(value)}"
                elif not 0 <= number < MAX_STEP:
                    self.bad[i] = f"{key!r} is out of range: {_short(value)}"
                else:
                    step = int(number)
            if step is None:  # a record without a step: the step of the record before it
                step = last if last is not None else self.ordinal + i
            elif i not in self.bad:
                last = step
            steps.append(step)
        return np.array(steps, np.int64), key

    def _times(self, columns: dict[str, list[Any]]) -> tuple[np.ndarray, str | None]:
        for key in TIME_KEYS:
            column = columns.get(key)
            if column is None:
                continue
            types = set(map(type, column))
            if types <= {int, float}:
                try:
                    values = np.array(column, np.float64)
                except OverflowError:
                    continue
                if np.all((values >= 1e9) & (values < 1e10)):
                    return values, key
                if np.all((values >= 1e12) & (values < 1e13)):
                    return values / 1000.0, key
            if not types <= {int, float, type(None)}:
                continue
            times = [as_timestamp(v) if v is not None else None for v in column]
            if any(t is None for t, v in zip(times, column, strict=True) if v is not None):
                continue  # not Unix times (a duration, say): an ordinary metric
            if all(t is None for t in times):
                continue
            return np.array([t if t is not None else self.mtime for t in times], np.float64), key
        return np.full(self.n, self.mtime, np.float64), None

    def _column(self, key: str, column: list[Any]) -> None:
        types = set(map(type, column))
        if types <= {int, float}:
            try:
                self._numbers(key, np.arange(self.n), np.array(column, np.float64))
                return
            except OverflowError:
                pass
        index: list[int] = []
        values: list[float] = []
        numeric = key in self.numeric_keys or bool(types & {int, float})
        nested: dict[str, list[Any]] = {}
        for i, value in enumerate(column):
            kind = type(value)
            if value is None or kind is list:
                self._inexact(value)
                continue
            if kind is dict:
                for sub, sub_value in value.items():
                    self._inexact(sub_value)
                    if type(sub_value) is not dict:  # one level only
                        nested.setdefault(f"{key}/{sub}", [None] * self.n)[i] = sub_value
                continue
            number = _as_number(value) if kind is not bool else None
            if kind is int or kind is float or (numeric and number is not None):
                index.append(i)
                values.append(number if number is not None else math.nan)
            elif numeric:
                self.bad.setdefault(i, f"{key!r} is not a number: {_short(value)}")
            else:
                self.texts[key] = value if kind is str else str(value).lower()
        if index:
            self._numbers(key, np.array(index, np.int64), np.array(values, np.float64))
        for sub_key, sub_column in nested.items():
            self._column(sub_key, sub_column)

    def _numbers(self, key: str, index: np.ndarray, values: np.ndarray) -> None:
        finite = np.isfinite(values)
        if not finite.all():
            for j in np.flatnonzero(~finite).tolist():
                self.bad.setdefault(int(index[j]), not_finite_reason(key, float(values[j])))
        if key in TOTAL_KEYS:
            if finite.any():
                self.total = int(values[finite][-1])
            return
        self.numeric_keys.add(key)
        self.columns[key] = (index, values)


def _event(value: str, line: int, step: int, parsed: Parsed, after_records: int) -> None:
    name = value.strip().lower()
    if name in END_EVENTS:
        parsed.add_marker("end", f'{{"event": "{value}"}} logged', line, step, after_records)
    elif name in CRASH_EVENTS:
        parsed.add_marker("crash", f'{{"event": "{value}"}} logged', line, step, after_records)


def is_jsonl(name: str) -> bool:
    return name.endswith(".jsonl")


def jsonl_files(listing: Listing) -> list[str]:
    return listing.named(is_jsonl)


FORMAT = RunFormat(
    name="jsonl",
    precedence=30,
    recognise=lambda listing: Match() if jsonl_files(listing) else None,
    is_candidate=is_jsonl,
    files=FileKind("jsonl", "streamed", lambda path, settings: LineSource(path, JsonlReader(), settings)),
    companions=jsonl_files,
)
