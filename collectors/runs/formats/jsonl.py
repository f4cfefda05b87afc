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
of clean lines is parsed with one `json.loads` call (about 3x faster than line by line); any
failure falls back to line by line to find the bad ones.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np

from collectors.runs.format_spec import FileKind, Listing, Match, RunFormat
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
)
from collectors.runs.sources import LineSource

MAX_STEP = 2**62
CONFIG_EVENTS = frozenset({"config", "params", "hparams", "hyperparameters"})
Column = tuple[np.ndarray, np.ndarray]  # (record indices, values)


def _decode_error(exc: UnicodeDecodeError) -> str:
    return f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at column {exc.start + 1})"


def _short(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def load_records(lines: Sequence[tuple[int, bytes]], parsed: Parsed) -> tuple[list[dict[str, Any]], list[int]]:
    """JSON objects of the non-empty lines, with their line numbers; bad lines go to `parsed`."""
    if not lines:
        return [], []
    try:
        # The common case, a batch of clean lines: one decode, one json.loads for all of them.
        texts = b"\n".join(raw for _, raw in lines).decode("utf-8").removeprefix("\ufeff").split("\n")
        if all(texts):
            records = json.loads("[" + ",".join(texts) + "]")
            if len(records) == len(texts) and all(type(r) is dict for r in records):
                return records, [no for no, _ in lines]
    except Exception:  # any problem: find the bad lines one by one
        pass
    numbered = [(no, raw) for no, raw in lines if raw.strip()]
    records, numbers = [], []
    for no, raw in numbered:
        try:
            text = raw.decode("utf-8").lstrip("\ufeff")
        except UnicodeDecodeError as exc:
            parsed.add_bad(no, _decode_error(exc))
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            parsed.add_bad(no, f"invalid JSON: {exc.msg} at column {exc.colno}")
            continue
        except RecursionError:
            parsed.add_bad(no, "invalid JSON: nested too deeply")
            continue
        except ValueError as exc:
            parsed.add_bad(no, f"invalid JSON: {str(exc)[:80]}")
            continue
        if type(record) is not dict:
            parsed.add_bad(no, f"not a JSON object (a JSON {type(record).__name__})")
            continue
        records.append(record)
        numbers.append(no)
    return records, numbers


class JsonlReader(LineReader):
    def __init__(self) -> None:
        self.ordinal = 0  # records read so far: the step of a record without one...
        self.last_step: int | None = None  # ...unless an earlier record had a step: then that one
        self.numeric_keys: set[str] = set()

    def reset(self) -> None:
        self.ordinal = 0
        self.last_step = None

    def read(self, lines: Sequence[tuple[int, bytes]], mtime: float, parsed: Parsed) -> None:
        records, numbers = load_records(lines, parsed)
        if records:
            batch = _Batch(records, numbers, self.ordinal, self.last_step, mtime, self.numeric_keys)
            self.last_step = batch.into(parsed)
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


class _Batch:
    """Turns a batch of records into columns of points, keeping whole bad records out."""

    def __init__(self, records: list[dict[str, Any]], numbers: list[int], ordinal: int, last_step: int | None,
                 mtime: float, numeric_keys: set[str]) -> None:
        self.records = records
        self.numbers = numbers
        self.n = len(records)
        self.ordinal = ordinal
        self.last_step = last_step
        self.mtime = mtime
        self.numeric_keys = numeric_keys
        self.bad: dict[int, str] = {}
        self.columns: dict[str, Column] = {}
        self.texts: dict[str, str] = {}
        self.total: int | None = None

    def into(self, parsed: Parsed) -> int | None:
        keys = dict.fromkeys(chain.from_iterable(self.records))
        steps, step_key = self._steps(keys)
        times, time_key = self._times(keys)
        # A config record's other keys are hyperparameters, not metric values (nor a total).
        plain = [{} if _is_config(r.get("event")) else r for r in self.records]
        for key in keys:
            if key not in (step_key, time_key, "event"):
                self._column(key, [r.get(key) for r in plain])
        keep = np.ones(self.n, bool)
        if self.bad:
            keep[list(self.bad)] = False
        if "event" in keys:
            events = [r.get("event") for r in self.records]
            for i, value in enumerate(events):
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
        valid = [i for i in range(self.n) if i not in self.bad]
        if step_key is None and self.last_step is None:
            return None
        return int(steps[valid[-1]]) if valid else self.last_step

    def _steps(self, keys: dict[str, None]) -> tuple[np.ndarray, str | None]:
        key = next((k for k in STEP_KEYS if k in keys), None)
        if key is None:
            if self.last_step is not None:
                return np.full(self.n, self.last_step, np.int64), None
            return np.arange(self.ordinal, self.ordinal + self.n, dtype=np.int64), None
        column = [r.get(key) for r in self.records]
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

    def _times(self, keys: dict[str, None]) -> tuple[np.ndarray, str | None]:
        for key in TIME_KEYS:
            if key not in keys:
                continue
            column = [r.get(key) for r in self.records]
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
                continue
            if kind is dict:
                for sub, sub_value in value.items():
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
