"""The database file: its tables, its schema version (PRAGMA user_version) and the steps that
migrate an older file in place. A file newer than this code stops start-up (NewerSchemaError):
writing to it could lose what a newer labwall keeps there.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

# One list of statements per step: MIGRATIONS[n] takes a file from version n to n + 1.
MIGRATIONS: list[list[str]] = [
    # 0 -> 1: the series tiers, the event log and alert transitions
    [
        """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
        """CREATE TABLE series (id INTEGER PRIMARY KEY, name TEXT NOT NULL, labels TEXT NOT NULL,
               UNIQUE (name, labels))""",
        # one row per series and minute (t: the minute's start); a series' rows are read and
        # deleted by (series, t) ranges, so that is the key
        """CREATE TABLE minute_points (series INTEGER NOT NULL, t INTEGER NOT NULL, mean REAL NOT NULL,
               max REAL NOT NULL, PRIMARY KEY (series, t)) WITHOUT ROWID""",
        """CREATE TABLE hour_points (series INTEGER NOT NULL, t INTEGER NOT NULL, mean REAL NOT NULL,
               max REAL NOT NULL, PRIMARY KEY (series, t)) WITHOUT ROWID""",
        """CREATE TABLE events (id INTEGER PRIMARY KEY, t REAL NOT NULL, level TEXT NOT NULL,
               source TEXT NOT NULL, text TEXT NOT NULL)""",
        """CREATE INDEX events_t ON events (t)""",
        # kind: raised | cleared; alert: the alert's document (JSON) at that moment
        """CREATE TABLE alert_transitions (id INTEGER PRIMARY KEY, t REAL NOT NULL, kind TEXT NOT NULL,
               alert_id TEXT NOT NULL, alert TEXT NOT NULL)""",
        """CREATE INDEX alert_transitions_t ON alert_transitions (t)""",
    ],
    # 1 -> 2: GPU usage records (minute records, rolled into hour records)
    [
        """CREATE TABLE usage (start REAL NOT NULL, span_s REAL NOT NULL, host TEXT NOT NULL, gpu TEXT NOT NULL,
               uuid TEXT NOT NULL, user TEXT NOT NULL, run TEXT NOT NULL, held_s REAL NOT NULL,
               gpu_s REAL NOT NULL, idle_s REAL NOT NULL, busy_s REAL NOT NULL, energy_j REAL NOT NULL)""",
        """CREATE INDEX usage_start ON usage (span_s, start)""",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
BUSY_TIMEOUT_S = 1.0  # another process holding the write lock: give up after this and retry later


class NewerSchemaError(RuntimeError):
    """The file was written by a newer labwall; this one must not touch it."""


def schema_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def connect(path: Path, read_only: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL journal, short busy wait."""
    uri = f"file:{path}?mode=ro" if read_only else f"file:{path}"
    db = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    if not read_only:
        db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit is durable once the WAL is synced at checkpoints; a crash of labwall
        # (not of the machine) loses nothing committed
        db.execute("PRAGMA synchronous=NORMAL")
    return db


def migrate(db: sqlite3.Connection, path: Path) -> int:
    """Bring the file to SCHEMA_VERSION; returns the version it had. Raises NewerSchemaError."""
    found = schema_version(db)
    if found > SCHEMA_VERSION:
        raise NewerSchemaError(
            f"{path} has schema version {found}, newer than this labwall knows ({SCHEMA_VERSION}): "
            "upgrade labwall, or set storage.path to another file (or storage.enabled: false)"
        )
    for version in range(found, SCHEMA_VERSION):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version]:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {version + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return found


def quick_check(db: sqlite3.Connection) -> str | None:
    """None when PRAGMA quick_check finds nothing wrong, else its first complaint."""
    rows = db.execute("PRAGMA quick_check(5)").fetchall()
    first = str(rows[0][0]) if rows else "no answer"
    return None if first == "ok" else first
