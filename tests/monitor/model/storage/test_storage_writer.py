"""The writer: batches reach the file, a new process is filled from it, minutes roll into hours,
retention deletes what is old, and a full queue drops (and says so) instead of waiting."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from storage_support import T0, Clock, durable, feed

from monitor.alerts.engine import AlertEngine
from monitor.config import Config
from monitor.model.samples import make_labels
from monitor.model.storage.writes import HOUR, roll_hours
from monitor.model.usage import UsageRecord

KEY = ("gpu_utilization_percent", make_labels(host="h1", gpu=0))


def usage(start: float, span_s: float = 60.0, user: str = "ana", gpu_s: float = 60.0) -> UsageRecord:
    return UsageRecord(start, span_s, "h1", "0", "GPU-0", user, "run-1", span_s, gpu_s, 10.0, 30.0, 6000.0)


def rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


def test_a_restart_restores_minutes_events_alerts_and_usage(tmp_path: Path) -> None:
    path = tmp_path / "labwall.db"
    clock = Clock(T0 + 200)
    store, storage = durable(path, clock)
    feed(store, KEY[0], T0, 181)  # minutes T0, T0+60, T0+120 closed; T0+180 open
    store.events.add("warning", "gpu", "GPU 0 is hot", time=T0 + 10)
    alert = {"id": "gpu_hot:0", "seq": 3, "rule": "gpu_hot", "severity": "warning", "state": "cleared",
             "subject": "GPU 0", "title": "GPU 0 hot", "message": "GPU 0 at 90 °C", "details": {"temp": 90},
             "since": T0, "raised_at": T0 + 30, "cleared_at": T0 + 90}
    store.record_alert("raised", {**alert, "state": "active", "cleared_at": None}, T0 + 30)
    store.record_alert("cleared", alert, T0 + 90)
    store.usage.add([usage(T0), usage(T0 + 60, user="bo")])
    assert storage.flush()
    assert rows(path, "SELECT t, mean, max FROM minute_points ORDER BY t") == [
        (T0, 55.0, 60.0), (T0 + 60, 55.0, 60.0), (T0 + 120, 55.0, 60.0)]

    again, storage2 = durable(path, Clock(T0 + 400))
    assert [e.text for e in again.events.read_after(0)][:1] == ["GPU 0 is hot"]
    assert [r.user for r in again.usage.records(0, T0 + 3600)] == ["ana", "bo"]
    assert storage2.usage_cursor == again.usage.cursor  # restored records are not written twice
    assert again.restored_until == T0 + 120
    feed(again, KEY[0], T0 + 300, 1)  # the collector writes the series again: its minute tier is back
    day = again.read_day_after(KEY, -1)
    assert day is not None and day.times.tolist() == [T0, T0 + 60, T0 + 120]
    engine = AlertEngine(again, Config())
    assert [a.as_dict()["message"] for a in engine.recent] == ["GPU 0 at 90 °C"]
    assert engine.document(T0 + 400)["recent"][0]["details"] == {"temp": 90}


def test_closed_hours_roll_into_the_hour_tier(tmp_path: Path) -> None:
    path = tmp_path / "labwall.db"
    _store, storage = durable(path, Clock(T0))
    for minute in range(180):  # three hours of minutes; the third hour's mean is 20, its max 99
        value = 20.0 if minute >= 120 else 10.0
        storage.minute(KEY, T0 + 60 * minute, value, 99.0 if minute == 150 else value)
    assert storage.flush()
    with sqlite3.connect(path) as db:
        db.isolation_level = None
        assert roll_hours(db, T0 + 2 * HOUR + 100) == 1  # the second hour is not closed 300 s yet
        assert roll_hours(db, T0 + 3 * HOUR + 301) == 2
        assert roll_hours(db, T0 + 3 * HOUR + 400) == 0  # nothing rolled twice
        assert db.execute("SELECT t, mean, max FROM hour_points ORDER BY t").fetchall() == [
            (T0, 10.0, 10.0), (T0 + HOUR, 10.0, 10.0), (T0 + 2 * HOUR, 20.0, 99.0)]


def test_retention_deletes_old_minutes_and_rolls_old_usage_into_hours(tmp_path: Path) -> None:
    path = tmp_path / "labwall.db"
    clock = Clock(T0)
    store, storage = durable(path, clock, minute_retention_s=2 * HOUR, hour_retention_s=10 * HOUR)
    for minute in range(0, 240, 10):
        storage.minute(KEY, T0 + 60 * minute, 1.0, 1.0)
    store.events.add("info", "test", "old event", time=T0)
    store.usage.add([usage(T0 + 60 * m, user="ana" if m < 45 else "bo") for m in range(60)])
    assert storage.flush()  # maintenance runs on the first flush: nothing old yet
    clock.now = T0 + 4 * HOUR + 301
    storage.next_maintenance = 0
    assert storage.flush()

    minutes = [t for (t,) in rows(path, "SELECT t FROM minute_points")]
    assert minutes and min(minutes) >= T0 + 2 * HOUR + 301 - 60 * 10  # older than 2 h: gone
    assert {t for (t,) in rows(path, "SELECT t FROM hour_points")} == {T0, T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR}
    assert rows(path, "SELECT span_s, user, held_s, gpu_s, idle_s, busy_s, energy_j FROM usage ORDER BY user") == [
        (3600.0, "ana", 45 * 60.0, 45 * 60.0, 450.0, 1350.0, 45 * 6000.0),
        (3600.0, "bo", 15 * 60.0, 15 * 60.0, 150.0, 450.0, 15 * 6000.0)]

    clock.now = T0 + 11 * HOUR  # past the hour retention: hour rows, events and usage go too
    storage.next_maintenance = 0
    assert storage.flush()
    assert rows(path, "SELECT min(t) FROM hour_points")[0][0] >= T0 + HOUR
    assert rows(path, "SELECT count(*) FROM usage")[0][0] == 0
    assert "old event" not in [t for (t,) in rows(path, "SELECT text FROM events")]


def test_a_full_queue_drops_the_oldest_counts_them_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "labwall.db"
    store, storage = durable(path, Clock(T0), queue_max=100)
    for minute in range(150):
        storage.minute(KEY, T0 + 60 * minute, 1.0, 1.0)
    assert storage.queue.dropped == 50 and len(storage.queue) == 100
    assert storage.flush()
    assert rows(path, "SELECT min(t), count(*) FROM minute_points") == [(T0 + 50 * 60, 100)]
    assert storage.snapshot()["dropped"] == 50
    assert any("write queue full: 50 records dropped" in e.text for e in store.events.read_after(0))
