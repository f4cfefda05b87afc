"""Faults of the file at the model level: the journal keeps queuing, says why, and recovers.
(tests/monitor/web/test_storage_server.py does the same with a live server.)"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from storage_support import T0, Clock, durable

from monitor.model.samples import make_labels

KEY = ("gpu_utilization_percent", make_labels(host="h1", gpu=0))


def texts(store) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.text for e in store.events.read_after(0)]


def test_a_corrupt_file_is_moved_aside_and_a_fresh_one_started(tmp_path: Path) -> None:
    path = tmp_path / "labwall.db"
    path.write_bytes(b"this is not a database" * 200)
    store, storage = durable(path)
    aside = list(tmp_path.glob("labwall.db.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not a database")
    assert any("is corrupt" in t and "moved aside" in t for t in texts(store))
    storage.minute(KEY, T0, 1.0, 2.0)
    assert storage.flush() and storage.snapshot().get("degraded") is None


def test_a_lock_held_by_another_process_degrades_then_writing_resumes(tmp_path: Path) -> None:
    path = tmp_path / "labwall.db"
    store, storage = durable(path)
    other = sqlite3.connect(path, isolation_level=None, timeout=0.1)
    other.execute("BEGIN EXCLUSIVE")
    storage.minute(KEY, T0, 1.0, 2.0)
    assert not storage.flush()
    assert "database is locked" in storage.snapshot()["degraded"]
    assert len(storage.queue) == 2  # the minute and the event saying why: kept for the next try
    other.execute("ROLLBACK")
    other.close()
    assert storage.flush()
    assert "degraded" not in storage.snapshot()
    assert sqlite3.connect(path).execute("SELECT count(*) FROM minute_points").fetchone()[0] == 1
    assert any(t.startswith("writing to") and "again" in t for t in texts(store))


def test_a_file_deleted_under_a_running_wall_is_started_again(tmp_path: Path) -> None:
    path = tmp_path / "data" / "labwall.db"
    store, storage = durable(path, Clock())
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    path.parent.rmdir()
    storage.minute(KEY, T0, 1.0, 2.0)
    assert storage.flush()
    assert sqlite3.connect(path).execute("SELECT count(*) FROM minute_points").fetchone()[0] == 1
    assert any("was removed or replaced" in t for t in texts(store))
