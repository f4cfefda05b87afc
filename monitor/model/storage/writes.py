"""What the writer thread does inside its transactions: write one batch, roll minutes into hours,
and delete what is past retention in small batches."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable
from dataclasses import astuple
from typing import Any

from monitor.model.samples import Event, SeriesKey
from monitor.model.usage import UsageRecord

HOUR = 3600
# Rows a retention statement may touch before the transaction ends and the next one starts.
SERIES_PER_TRANSACTION = 200
ROWS_PER_DELETE = 2000
HOURS_PER_PASS = 48  # hours rolled up per maintenance pass (more after a long stop: the next passes)
ROLL_AFTER_S = 300  # an hour is rolled once it ended this long ago (its last minutes are flushed by then)

# One queued record: ("m", key, start, mean, max) | ("e", event) | ("a", kind, alert, time)
Item = tuple[Any, ...]
USAGE_COLUMNS = "start, span_s, host, gpu, uuid, user, run, held_s, gpu_s, idle_s, busy_s, energy_j"


def labels_text(key: SeriesKey) -> str:
    return json.dumps(dict(key[1]), sort_keys=True, separators=(",", ":"))


class SeriesIds:
    """Series (name, labels) → row id of the series table, cached; forgotten when the file changes."""

    def __init__(self) -> None:
        self._ids: dict[SeriesKey, int] = {}

    def clear(self) -> None:
        self._ids.clear()

    def get(self, db: sqlite3.Connection, key: SeriesKey) -> int:
        found = self._ids.get(key)
        if found is None:
            labels = labels_text(key)
            db.execute("INSERT OR IGNORE INTO series (name, labels) VALUES (?, ?)", (key[0], labels))
            row = db.execute("SELECT id FROM series WHERE name = ? AND labels = ?", (key[0], labels)).fetchone()
            found = self._ids[key] = int(row[0])
        return found


def write_batch(db: sqlite3.Connection, ids: SeriesIds, items: Iterable[Item], usage: list[UsageRecord]) -> int:
    """Insert one batch (inside the caller's transaction); returns the rows written."""
    minutes, events, alerts = [], [], []
    for item in items:
        if item[0] == "m":
            _, key, start, mean, peak = item
            minutes.append((ids.get(db, key), int(start), mean, peak))
        elif item[0] == "e":
            e: Event = item[1]
            events.append((e.time, e.level, e.source, e.text))
        else:
            _, kind, alert, t = item
            alerts.append((t, kind, str(alert.get("id", "")), json.dumps(alert, default=str)))
    db.executemany("INSERT OR REPLACE INTO minute_points (series, t, mean, max) VALUES (?, ?, ?, ?)", minutes)
    db.executemany("INSERT INTO events (t, level, source, text) VALUES (?, ?, ?, ?)", events)
    db.executemany("INSERT INTO alert_transitions (t, kind, alert_id, alert) VALUES (?, ?, ?, ?)", alerts)
    db.executemany(f"INSERT INTO usage ({USAGE_COLUMNS}) VALUES ({', '.join('?' * 12)})",
                   [astuple(r) for r in usage])
    return len(minutes) + len(events) + len(alerts) + len(usage)


def _meta(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _set_meta(db: sqlite3.Connection, key: str, value: str) -> None:
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


def rolled_until(db: sqlite3.Connection) -> float | None:
    """Minutes before this time are already rolled into the hour tier (None: nothing rolled yet)."""
    found = _meta(db, "hours_rolled_until")
    return float(found) if found is not None else None


def roll_hours(db: sqlite3.Connection, now: float) -> int:
    """Roll closed hours of the minute tier into the hour tier (mean of the minute means, max of the
    maxima), at most HOURS_PER_PASS of them, one transaction; returns the hours rolled."""
    last_closed = math.floor((now - ROLL_AFTER_S) / HOUR) * HOUR  # hours before this one are closed
    start = rolled_until(db)
    if start is None:
        first = db.execute("SELECT min(t) FROM minute_points").fetchone()[0]
        if first is None:
            return 0
        start = math.floor(first / HOUR) * HOUR
    end = min(last_closed, start + HOURS_PER_PASS * HOUR)
    if end <= start:
        return 0
    series = [row[0] for row in db.execute("SELECT id FROM series")]
    db.execute("BEGIN IMMEDIATE")
    try:
        for hour in range(int(start), int(end), HOUR):
            for sid in series:
                db.execute(
                    "INSERT OR REPLACE INTO hour_points (series, t, mean, max) "
                    "SELECT series, ?, avg(mean), max(max) FROM minute_points "
                    "WHERE series = ? AND t >= ? AND t < ? GROUP BY series",
                    (hour, sid, hour, hour + HOUR),
                )
        _set_meta(db, "hours_rolled_until", str(end))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return int((end - start) // HOUR)


def _in_transaction(db: sqlite3.Connection, statements: list[tuple[str, tuple[Any, ...]]]) -> int:
    db.execute("BEGIN IMMEDIATE")
    try:
        deleted = sum(db.execute(sql, args).rowcount for sql, args in statements)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return deleted


def delete_old(db: sqlite3.Connection, now: float, minute_retention_s: float, hour_retention_s: float) -> int:
    """Retention: minute rows past minute_retention_s, hour rows, events and alert transitions past
    hour_retention_s; small transactions (SERIES_PER_TRANSACTION series, ROWS_PER_DELETE rows)."""
    minute_cutoff, hour_cutoff = now - minute_retention_s, now - hour_retention_s
    series = [row[0] for row in db.execute("SELECT id FROM series")]
    deleted = 0
    for i in range(0, len(series), SERIES_PER_TRANSACTION):
        chunk = series[i:i + SERIES_PER_TRANSACTION]
        deleted += _in_transaction(db, [
            *(("DELETE FROM minute_points WHERE series = ? AND t < ?", (sid, minute_cutoff)) for sid in chunk),
            *(("DELETE FROM hour_points WHERE series = ? AND t < ?", (sid, hour_cutoff)) for sid in chunk),
        ])
    for table in ("events", "alert_transitions"):
        while True:
            n = _in_transaction(db, [(f"DELETE FROM {table} WHERE id IN "
                                      f"(SELECT id FROM {table} WHERE t < ? LIMIT ?)", (hour_cutoff, ROWS_PER_DELETE))])
            deleted += n
            if n < ROWS_PER_DELETE:
                break
    return deleted + roll_usage(db, minute_cutoff, hour_cutoff)


def roll_usage(db: sqlite3.Connection, minute_cutoff: float, hour_cutoff: float) -> int:
    """Usage minute records older than minute_cutoff become hour records (sums per host, GPU, user
    and run), one hour per transaction, whole hours only; hour records past hour_cutoff go."""
    changed = 0
    while True:
        first = db.execute("SELECT min(start) FROM usage WHERE span_s < ?", (HOUR,)).fetchone()[0]
        if first is None:
            break
        hour = math.floor(first / HOUR) * HOUR
        if hour + HOUR > minute_cutoff:
            break  # the hour still has minutes to keep
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                f"INSERT INTO usage ({USAGE_COLUMNS}) SELECT ?, ?, host, gpu, uuid, user, run, sum(held_s), "
                "sum(gpu_s), sum(idle_s), sum(busy_s), sum(energy_j) FROM usage "
                "WHERE span_s < ? AND start >= ? AND start < ? GROUP BY host, gpu, uuid, user, run",
                (hour, HOUR, HOUR, hour, hour + HOUR),
            )
            changed += db.execute("DELETE FROM usage WHERE span_s < ? AND start >= ? AND start < ?",
                                  (HOUR, hour, hour + HOUR)).rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    while True:
        n = _in_transaction(db, [("DELETE FROM usage WHERE rowid IN (SELECT rowid FROM usage "
                                  "WHERE span_s >= ? AND start < ? LIMIT ?)", (HOUR, hour_cutoff, ROWS_PER_DELETE))])
        changed += n
        if n < ROWS_PER_DELETE:
            return changed


def usage_record(row: tuple[Any, ...]) -> UsageRecord:
    return UsageRecord(*row)
