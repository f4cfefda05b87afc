"""JSON Lines: one JSON object per line (`metrics.jsonl`).

Numbers are metrics; strings and booleans are text fields (latest value); a nested object is
flattened one level (`{"train": {"loss": 1}}` -> `train/loss`). `step` (or global_step, iteration,
...) gives the step, else the record's position in the file; `time` (or timestamp, wall_time) a
Unix time in s or ms, else the file's modification time. `{"event": "end"}` marks the run finished,
`{"event": "crash"}` crashed; `total_steps` / `max_steps` give the total.

Bad lines (invalid JSON, not an object, not UTF-8, a NaN or infinite value) are counted; the other
fields of a line with a NaN are still used. A batch of clean lines is parsed with one `json.loads`
call (about 3x faster than line by line); any failure falls back to line by line to find the bad ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np

from collectors.runs.formats import (
    CRASH_EVENTS,
    END_EVENTS,
    STEP_KEYS,
    TIME_KEYS,
    TOTAL_KEYS,
    Marker,
    Parsed,
    as_timestamp,
    integral_step,
    not_finite_reason,
)

_SPECIAL = frozenset(STEP_KEYS) | frozenset(TIME_KEYS) | frozenset(TOTAL_KEYS) | {"event"}


def _decode_error(exc: UnicodeDecodeError) -> str:
    return f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at column {exc.start + 1})"


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_records(lines: Sequence[tuple[int, bytes]], parsed: Parsed) -> tuple[list[dict[str, Any]], list[int]]:
    """JSON objects of the non-empty lines, with their line numbers; bad lines go to `parsed`."""
    numbered = [(no, raw) for no, raw in lines if raw.strip()]
    if not numbered:
        return [], []
    try:
        texts = [raw.decode("utf-8") for _, raw in numbered]
        records = json.loads("[" + ",".join(texts) + "]")
        if len(records) == len(numbered) and all(type(r) is dict for r in records):
            return records, [no for no, _ in numbered]
    except Exception:  # any problem: find the bad lines one by one
        pass
    records, numbers = [], []
    for no, raw in numbered:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            parsed.add_bad(no, _decode_error(exc))
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            parsed.add_bad(no, f"invalid JSON: {exc.msg} at column {exc.colno}")
            continue
        except (ValueError, RecursionError) as exc:
            parsed.add_bad(no, f"invalid JSON: {_short(str(exc))}")
            continue
        if type(record) is not dict:
            parsed.add_bad(no, f"not a JSON object (a JSON {type(record).__name__})")
            continue
        records.append(record)
        numbers.append(no)
    return records, numbers


class JsonlReader:
    def __init__(self) -> None:
        self.ordinal = 0  # records read so far: the step of a record without one

    def reset(self) -> None:
        self.ordinal = 0

    def read(self, lines: Sequence[tuple[int, bytes]], mtime: float, parsed: Parsed) -> None:
        records, numbers = load_records(lines, parsed)
        if records:
            records_to_parsed(records, numbers, self.ordinal, mtime, parsed)
            self.ordinal += len(records)


def _column(records: list[dict[str, Any]], key: str) -> list[Any]:
    return [r.get(key) for r in records]


def _steps(records: list[dict[str, Any]], keys: dict[str, None], ordinal: int) -> tuple[np.ndarray, str | None]:
    n = len(records)
    key = next((k for k in STEP_KEYS if k in keys), None)
    fallback = np.arange(ordinal, ordinal + n, dtype=np.int64)
    if key is None:
        return fallback, None
    column = _column(records, key)
    if set(map(type, column)) == {int}:
        return np.array(column, np.int64), key
    steps = [integral_step(v) for v in column]
    return np.array([s if s is not None else int(fallback[i]) for i, s in enumerate(steps)], np.int64), key


def _times(records: list[dict[str, Any]], keys: dict[str, None], mtime: float) -> tuple[np.ndarray, str | None]:
    for key in TIME_KEYS:
        if key not in keys:
            continue
        column = _column(records, key)
        if not set(map(type, column)) <= {int, float}:
            continue
        values = np.array(column, np.float64)
        if np.all((values >= 1e9) & (values < 1e10)):
            return values, key
        if np.all((values >= 1e12) & (values < 1e13)):
            return values / 1000.0, key
        times = [as_timestamp(v) for v in column]
        if all(t is not None for t in times):
            return np.array(times, np.float64), key
    return np.full(len(records), mtime, np.float64), None


def records_to_parsed(records: list[dict[str, Any]], numbers: list[int], ordinal: int, mtime: float,
                      parsed: Parsed) -> None:
    keys = dict.fromkeys(chain.from_iterable(records))
    steps, step_key = _steps(records, keys, ordinal)
    times, time_key = _times(records, keys, mtime)
    parsed.records += len(records)
    parsed.progress.extend(zip(times[-64:].tolist(), steps[-64:].tolist(), strict=True))
    bad_lines: dict[int, str] = {}
    for key in keys:
        if key in (step_key, time_key):
            continue
        column = _column(records, key)
        types = set(map(type, column))
        if types <= {int, float}:
            try:
                values = np.array(column, np.float64)
            except OverflowError:
                _mixed(key, column, steps, times, numbers, parsed, bad_lines)
                continue
            _numeric(key, values, np.arange(len(values)), steps, times, numbers, parsed, bad_lines)
        elif types <= {int, float, type(None)}:
            index = np.array([i for i, v in enumerate(column) if v is not None], np.int64)
            try:
                values = np.array([column[i] for i in index.tolist()], np.float64)
            except OverflowError:
                _mixed(key, column, steps, times, numbers, parsed, bad_lines)
                continue
            _numeric(key, values, index, steps, times, numbers, parsed, bad_lines)
        else:
            _mixed(key, column, steps, times, numbers, parsed, bad_lines)
    for no in sorted(bad_lines):
        parsed.add_bad(no, bad_lines[no])


def _numeric(key: str, values: np.ndarray, index: np.ndarray, steps: np.ndarray, times: np.ndarray,
             numbers: list[int], parsed: Parsed, bad_lines: dict[int, str]) -> None:
    if key in TOTAL_KEYS:
        finite = values[np.isfinite(values)]
        if finite.size:
            parsed.total, parsed.total_is_end = int(finite[-1]), True
        return
    finite = np.isfinite(values)
    if not finite.all():
        for i in np.flatnonzero(~finite).tolist():
            bad_lines.setdefault(numbers[int(index[i])], not_finite_reason(key, float(values[i])))
        values, index = values[finite], index[finite]
    parsed.add_points(key, steps[index], times[index], values)


def _mixed(key: str, column: list[Any], steps: np.ndarray, times: np.ndarray, numbers: list[int],
           parsed: Parsed, bad_lines: dict[int, str]) -> None:
    """A column holding more than numbers: numbers are points, strings text, objects flattened."""
    for i, value in enumerate(column):
        kind = type(value)
        if kind is int or kind is float:
            try:
                number = float(value)
            except OverflowError:
                bad_lines.setdefault(numbers[i], f"{key!r} is too large for a number")
                continue
            if key in TOTAL_KEYS:
                parsed.total, parsed.total_is_end = int(number), True
            elif number - number != 0:  # NaN or infinite
                bad_lines.setdefault(numbers[i], not_finite_reason(key, number))
            else:
                parsed.add_point(key, int(steps[i]), float(times[i]), number)
        elif kind is str:
            if key == "event":
                _event(value, numbers[i], int(steps[i]), parsed)
            parsed.texts[key] = value
        elif kind is bool:
            parsed.texts[key] = str(value).lower()
        elif kind is dict and key not in _SPECIAL:
            for sub, sub_value in value.items():
                _mixed(f"{key}/{sub}", [sub_value], steps[i : i + 1], times[i : i + 1], numbers[i : i + 1],
                       parsed, bad_lines)


def _event(value: str, line: int, step: int, parsed: Parsed) -> None:
    name = value.strip().lower()
    if name in END_EVENTS:
        parsed.markers.append(Marker("end", f'{{"event": "{value}"}} logged', line, step))
    elif name in CRASH_EVENTS:
        parsed.markers.append(Marker("crash", f'{{"event": "{value}"}} logged', line, step))
