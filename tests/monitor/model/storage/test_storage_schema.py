"""The file's schema: created fresh, migrated in place from an older version, refused when newer."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from storage_support import durable

from monitor.model.storage import SCHEMA_VERSION, NewerSchemaError
from monitor.model.storage.schema import MIGRATIONS


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_a_fresh_file_gets_the_current_schema_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "labwall.db"  # the directory is created too
    durable(path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"meta", "series", "minute_points", "hour_points", "events", "alert_transitions", "usage"} <= tables(path)


def test_an_older_file_is_migrated_in_place_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "labwall.db"
    db = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:  # the version-1 layout: no usage table yet
        db.execute(statement)
    db.execute("INSERT INTO events (t, level, source, text) VALUES (100.0, 'info', 'labwall', 'from version 1')")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    assert "usage" not in tables(path)

    store, _ = durable(path)

    assert "usage" in tables(path)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert next(e.text for e in store.events.read_after(0)) == "from version 1"


def test_a_newer_schema_stops_start_up_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "labwall.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    with pytest.raises(NewerSchemaError, match=r"schema version 99, newer than this labwall knows \(2\)"):
        durable(path)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 99  # untouched
