"""Start-up: fill the in-memory model from the file (before any collector runs)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from monitor.model.samples import SeriesKey
from monitor.model.storage.writes import USAGE_COLUMNS, usage_record
from monitor.model.store import DAY_BUCKETS, MINUTE, Store

DAY_S = DAY_BUCKETS * MINUTE


@dataclass(slots=True)
class Restored:
    series: int = 0
    minutes: int = 0
    events: int = 0
    alerts: int = 0
    usage: int = 0

    def text(self) -> str:
        return (f"{self.minutes} minute points of {self.series} series, {self.events} events, "
                f"{self.alerts} cleared alerts, {self.usage} usage records")


def series_key(name: str, labels: str) -> SeriesKey:
    return (name, tuple(sorted(json.loads(labels).items())))


def restore(db: sqlite3.Connection, store: Store, now: float, event_limit: int, alert_limit: int,
            usage_since: float) -> Restored:
    done = Restored()
    # the store's 1-minute tier holds 24 h; one range read per series (the table's key)
    keys = {sid: series_key(name, labels) for sid, name, labels in db.execute("SELECT id, name, labels FROM series")}
    for sid, key in keys.items():
        points = [(float(t), mean, peak) for t, mean, peak in db.execute(
            "SELECT t, mean, max FROM minute_points WHERE series = ? AND t >= ? ORDER BY t", (sid, now - DAY_S))]
        if points:
            store.restore_minutes(key, points)
            done.series += 1
            done.minutes += len(points)
    events = db.execute("SELECT t, level, source, text FROM events ORDER BY id DESC LIMIT ?", (event_limit,)).fetchall()
    done.events = store.events.restore(reversed(events)) if events else 0
    alerts: list[dict[str, Any]] = []
    for (text,) in reversed(db.execute("SELECT alert FROM alert_transitions WHERE kind = 'cleared' "
                                       "ORDER BY id DESC LIMIT ?", (alert_limit,)).fetchall()):
        try:
            alerts.append(json.loads(text))
        except ValueError:
            continue  # one unreadable row loses that alert only
    store.restored_alerts = alerts
    done.alerts = len(alerts)
    records = [usage_record(r) for r in db.execute(
        f"SELECT {USAGE_COLUMNS} FROM usage WHERE start >= ? ORDER BY start", (usage_since,))]
    store.usage.load(records)
    done.usage = len(records)
    return done
