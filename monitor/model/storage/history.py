"""One series' history over a time span, at the finest resolution that fits in MAX_POINTS: raw
points (memory, the last history.window_s), the 1-minute tier (memory's 24 h plus the file's
minute_retention_days) or the hour tier (the file), hours merged further for very long spans."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from monitor.model.samples import SeriesKey
from monitor.model.storage.restore import series_key
from monitor.model.storage.schema import connect
from monitor.model.storage.writes import HOUR, rolled_until
from monitor.model.store import MINUTE, Store

MAX_POINTS = 2000


class UnknownSeries(LookupError):
    pass


class AmbiguousSeries(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class History:
    key: SeriesKey
    step_s: float
    points: list[tuple[float, float, float]]  # (time, mean, max)

    def as_dict(self) -> dict[str, Any]:
        return {"series": self.key[0], "labels": dict(self.key[1]), "step_s": self.step_s,
                "points": [list(p) for p in self.points]}


def _open(path: Path | None) -> sqlite3.Connection | None:
    if path is None or not path.exists():
        return None
    try:
        return connect(path, read_only=True)
    except sqlite3.Error:
        return None  # a storage fault: answer from memory (the health says why)


def find_series(store: Store, db: sqlite3.Connection | None, name: str,
                labels: dict[str, str]) -> tuple[SeriesKey, int | None]:
    """The one series named `name` whose labels include `labels`, and its row id in the file."""
    known: dict[SeriesKey, int | None] = {key: None for key in store.keys(name) if key[0] == name}
    if db is not None:
        try:
            for sid, labels_text in db.execute("SELECT id, labels FROM series WHERE name = ?", (name,)):
                known[series_key(name, labels_text)] = int(sid)
        except sqlite3.Error:
            pass
    if not known:
        raise UnknownSeries(f"no series named {name!r}")
    matches = [key for key in known if all(dict(key[1]).get(k) == v for k, v in labels.items())]
    if not matches:
        raise UnknownSeries(f"no {name!r} series has the labels {labels}")
    if len(matches) > 1:
        values: dict[str, set[str]] = {}
        for key in matches:
            for k in {k for m in matches for k, _ in m[1]}:
                values.setdefault(k, set()).add(dict(key[1]).get(k, ""))
        differ = ", ".join(f"{k} ({', '.join(sorted(v)[:8])})" for k, v in sorted(values.items()) if len(v) > 1)
        raise AmbiguousSeries(f"{len(matches)} {name!r} series match; add a label to pick one: {differ}")
    return matches[0], known[matches[0]]


def read_history(store: Store, path: Path | None, name: str, labels: dict[str, str],
                 since: float, until: float) -> History:
    db = _open(path)
    try:
        key, sid = find_series(store, db, name, labels)
        span = until - since
        raw = store.read_after(key, -1)
        raw_history = None
        if raw is not None and len(raw) >= 2:
            step = float(np.median(np.diff(raw.times)))  # the collector's interval, give or take its jitter
            if since >= raw.times[-1] - store.window_s and span / max(step, 1e-3) <= MAX_POINTS:
                keep = (raw.times >= since) & (raw.times < until)
                values = raw.values[keep, 0]
                raw_history = History(key, max(0.1, round(step, 1)), list(zip(raw.times[keep].tolist(), values.tolist(),
                                                                    values.tolist(), strict=True)))
                if raw.times[0] <= since + step:
                    return raw_history
        if span / MINUTE <= MAX_POINTS:
            minutes = _minutes(store, db, key, sid, since, until)
            # raw points began after `since` (a restart): minutes, unless none is older than them
            if raw_history is not None and raw is not None and not (minutes and minutes[0][0] < raw.times[0]):
                return raw_history
            return History(key, MINUTE, minutes)
        step = HOUR * max(1, math.ceil(span / HOUR / MAX_POINTS))
        return History(key, float(step), _hours(db, sid, since, until, step))
    finally:
        if db is not None:
            db.close()


def _minutes(store: Store, db: sqlite3.Connection | None, key: SeriesKey, sid: int | None,
             since: float, until: float) -> list[tuple[float, float, float]]:
    points: dict[float, tuple[float, float, float]] = {}
    if db is not None and sid is not None:
        rows = db.execute("SELECT t, mean, max FROM minute_points WHERE series = ? AND t >= ? AND t < ? ORDER BY t",
                          (sid, math.floor(since / MINUTE) * MINUTE, until))
        points = {float(t): (float(t), mean, peak) for t, mean, peak in rows}
    day = store.read_day_after(key, -1)  # the minutes not flushed yet are in memory
    if day is not None:
        for t, (mean, peak) in zip(day.times.tolist(), day.values.tolist(), strict=True):
            if since - MINUTE < t < until:
                points[t] = (t, mean, peak)
    return [points[t] for t in sorted(points)]


def _hours(db: sqlite3.Connection | None, sid: int | None, since: float, until: float,
           step: int) -> list[tuple[float, float, float]]:
    if db is None or sid is None:
        return []
    first = math.floor(since / step) * step
    border = rolled_until(db) or 0.0
    # rolled hours from the hour tier, the hours after them straight from the minute tier
    rows = db.execute(
        "SELECT (t - ?) / ? AS b, avg(mean), max(max) FROM ("
        " SELECT t, mean, max FROM hour_points WHERE series = ? AND t >= ? AND t < ? AND t < ?"
        " UNION ALL SELECT (t / 3600) * 3600, avg(mean), max(max) FROM minute_points"
        "  WHERE series = ? AND t >= ? AND t >= ? AND t < ? GROUP BY t / 3600"
        ") GROUP BY b ORDER BY b",
        (first, step, sid, first, until, border, sid, first, border, until),
    )
    return [(float(first + b * step), mean, peak) for b, mean, peak in rows]
