"""Durable storage: one writer thread that keeps the model's minute tier, events, alert transitions
and usage records in a SQLite file, and fills the model from it on start.

Collector threads and the event loop only append to a bounded queue (never a disk wait); the writer
drains it every `flush_s` in one transaction. A fault of the file (missing, read-only, full, locked,
corrupt) never stops the wall: the model keeps running from memory, the health says why, an event
tells what happened, and the writer tries again every `flush_s` until the fault clears.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.model.samples import Event, SeriesKey
from monitor.model.storage import writes
from monitor.model.storage.restore import Restored, restore
from monitor.model.storage.schema import SCHEMA_VERSION, connect, migrate, quick_check
from monitor.model.store import Store

log = logging.getLogger(__name__)
SOURCE = "storage"
MAINTENANCE_S = 300.0  # hour rollup and retention run this often (and once soon after start)


@dataclass(frozen=True, slots=True)
class StorageSettings:
    path: Path
    flush_s: float = 10.0
    minute_retention_s: float = 14 * 86400.0
    hour_retention_s: float = 400 * 86400.0
    queue_max: int = 100_000
    recent_alerts: int = 100  # cleared alerts read back for /api/alerts "recent"


class WriteQueue:
    """Bounded: when full, the oldest record is dropped and counted. `put` never blocks on a disk."""

    def __init__(self, maxlen: int) -> None:
        self.maxlen = maxlen
        self._items: deque[writes.Item] = deque()
        self._lock = threading.Lock()
        self.dropped = 0

    def put(self, item: writes.Item) -> None:
        with self._lock:
            if len(self._items) >= self.maxlen:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)

    def take(self) -> list[writes.Item]:
        with self._lock:
            items = list(self._items)
            self._items.clear()
            return items

    def put_back(self, items: list[writes.Item]) -> None:
        """A batch that could not be written goes back in front of what came since (the oldest of
        them are dropped, and counted, when that is more than the queue holds)."""
        with self._lock:
            merged = items + list(self._items)
            over = max(0, len(merged) - self.maxlen)
            self.dropped += over
            self._items = deque(merged[over:])

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
        return f"{text} (another process holds the file's write lock)"
    return text


def is_corrupt(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.DatabaseError) and ("malformed" in text or "not a database" in text)


class DurableStore:
    """The journal of one Store (store.journal); created, restored and started by the app."""

    def __init__(self, store: Store, settings: StorageSettings, clock: Any = time.time) -> None:
        self.store = store
        self.settings = settings
        self.path = settings.path
        self.clock = clock
        self.queue = WriteQueue(settings.queue_max)
        self.db: sqlite3.Connection | None = None
        self.ids = writes.SeriesIds()
        self.usage_cursor = 0
        self.problem: str | None = None  # the fault now, shown as /healthz "degraded"
        self.last_fault: str | None = None
        self.dropped_reported = 0
        self.rows_written = 0
        self.last_write: float | None = None
        self.writer_cpu_s = 0.0  # the writer thread's own CPU time (bench/storage_bench.py)
        self.next_maintenance = 0.0
        self.restored: Restored | None = None
        self._inode: int | None = None
        self._checked_inode: int | None = None  # the file PRAGMA quick_check last passed (once per file)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one flush at a time (the thread, or stop's last one)

    # -- start-up (before any collector runs) -------------------------------------------------------
    def open_and_restore(self) -> Restored | None:
        """Open the file, fill the model from it, then start journaling. Raises NewerSchemaError;
        any other fault leaves the model empty and memory-only until the writer can open the file."""
        now = self.clock()
        self.store.usage.max_age_s = self.settings.hour_retention_s
        self.store.usage.minute_age_s = self.settings.minute_retention_s
        if self._open(now):
            assert self.db is not None
            try:
                self.restored = restore(self.db, self.store, now, self.store.events.capacity,
                                        self.settings.recent_alerts, now - self.settings.hour_retention_s)
            except sqlite3.Error as exc:
                self._fault(f"cannot read {self.path}: {describe(exc)}", exc)
        self.usage_cursor = self.store.usage.cursor
        self.store.journal = self
        self.store.events.listener = self.event
        if self.restored is not None and self.restored.text() != Restored().text():
            log.info("storage: restored %s from %s", self.restored.text(), self.path)
            self.store.events.add("info", SOURCE, f"history restored from {self.path}: {self.restored.text()}")
        return self.restored

    def _open(self, now: float) -> bool:
        """Open (or create) the file, moving a corrupt one aside; False, with the problem noted, when
        it cannot be used now. NewerSchemaError goes to the caller."""
        self._close()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db, problem = self._connect_checked()
            if problem is not None:
                aside = self._move_aside(now)
                self.store.events.add("warning", SOURCE, f"{self.path} is corrupt ({problem}): moved aside to "
                                                         f"{aside.name}, a new file started")
                self.last_fault = f"corrupt file moved aside to {aside}"
                db = connect(self.path)
            migrate(db, self.path)
            self._inode = os.stat(self.path).st_ino
        except (OSError, sqlite3.Error) as exc:
            self._fault(f"cannot open {self.path}: {describe(exc)}", exc)
            return False
        self.db = db
        self.ids.clear()
        return True

    def _connect_checked(self) -> tuple[sqlite3.Connection, str | None]:
        """A connection, and what PRAGMA quick_check (or opening) says is corrupt, if anything (the
        connection is then closed)."""
        db = None
        try:
            db = connect(self.path)
            inode = os.stat(self.path).st_ino
            # quick_check reads the whole file: once per file, not on every retry during a fault
            problem = quick_check(db) if inode != self._checked_inode else None
            if problem is None:
                self._checked_inode = inode
        except sqlite3.DatabaseError as exc:
            if not is_corrupt(exc):
                if db is not None:
                    db.close()
                raise
            problem = str(exc)
        if problem is not None and db is not None:
            db.close()
        return db, problem  # type: ignore[return-value]

    def _move_aside(self, now: float) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(now))
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(str(self.path) + suffix)
            if part.exists():
                part.rename(Path(str(aside) + suffix))
        return aside

    def _close(self) -> None:
        if self.db is not None:
            with contextlib.suppress(sqlite3.Error):
                self.db.close()
            self.db = None

    # -- the journal (any thread; only queues) ------------------------------------------------------
    def minute(self, key: SeriesKey, start: float, mean: float, peak: float) -> None:
        self.queue.put(("m", key, start, mean, peak))

    def event(self, event: Event) -> None:
        self.queue.put(("e", event))

    def alert(self, kind: str, alert: dict[str, Any], time: float) -> None:
        self.queue.put(("a", kind, alert, time))

    def snapshot(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "state": "ok", "path": str(self.path), "schema_version": SCHEMA_VERSION,
            "queued": len(self.queue), "dropped": self.queue.dropped, "rows_written": self.rows_written,
            "last_write": self.last_write, "last_fault": self.last_fault,
        }
        if self.problem:
            body["degraded"] = self.problem
        return body

    # -- the writer thread --------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="labwall-storage", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop the thread, write what is queued (one last flush, bounded by the busy timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._lock.acquire(timeout=max(0.1, timeout_s)):
            try:
                self.flush()
            finally:
                self._lock.release()
                self._close()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.flush_s):
            with self._lock:
                started = time.thread_time()
                try:
                    self.flush()
                except Exception as exc:  # the writer must outlive anything a flush meets
                    log.exception("storage: flush failed")
                    self._fault(f"writer error: {describe(exc)}", exc)
                self.writer_cpu_s += time.thread_time() - started

    def flush(self) -> bool:
        """One cycle: (re)open when needed, write the queue and new usage records in one transaction,
        run maintenance when due. True when everything queued was written."""
        now = self.clock()
        if (self.db is None or not self._same_file()) and not self._open(now):
            self._report_drops()
            return False
        assert self.db is not None
        items = self.queue.take()
        self._report_drops()  # after the take: its event must not push out one more record
        usage_cursor, usage = self.store.usage.after(self.usage_cursor)
        if not items and not usage and self.problem is None:
            if now >= self.next_maintenance:
                self._maintain(now)
            return True
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                written = writes.write_batch(self.db, self.ids, items, usage)
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            self.queue.put_back(items)
            self._write_failed(exc, now)
            return False
        self.usage_cursor = usage_cursor
        self.rows_written += written
        self.last_write = now
        if self.problem is not None:
            self.store.events.add("info", SOURCE, f"writing to {self.path} again (was: {self.problem})")
            log.warning("storage: writing again to %s", self.path)
            self.problem = None
        if now >= self.next_maintenance:
            self._maintain(now)
        return True

    def _same_file(self) -> bool:
        """A file deleted (or replaced) under a running labwall: start writing a new one."""
        try:
            same = os.stat(self.path).st_ino == self._inode
        except OSError:
            same = False
        if not same:
            self.store.events.add("warning", SOURCE, f"{self.path} was removed or replaced: starting a new file")
        return same

    def _write_failed(self, exc: sqlite3.Error, now: float) -> None:
        self._close()  # the next cycle reopens: a connection after an I/O error is not trusted
        if is_corrupt(exc):
            self._checked_inode = None
            aside = self._move_aside(now)
            self._fault(f"{self.path} is corrupt ({exc}): moved aside to {aside.name}", exc)
        else:
            self._fault(f"cannot write {self.path}: {describe(exc)}", exc)

    def _maintain(self, now: float) -> None:
        assert self.db is not None
        try:
            writes.roll_hours(self.db, now)
            writes.delete_old(self.db, now, self.settings.minute_retention_s, self.settings.hour_retention_s)
            self.store.usage.trim(now)
            self.next_maintenance = now + MAINTENANCE_S
        except sqlite3.Error as exc:
            self._write_failed(exc, now)

    def _fault(self, problem: str, exc: BaseException) -> None:
        self.last_fault = problem
        if problem != self.problem:  # one event per new problem, not one per retry
            self.problem = problem
            log.warning("storage: %s (running from memory; retrying every %g s)", problem, self.settings.flush_s)
            self.store.events.add("warning", SOURCE, f"{problem} — running from memory, retrying")

    def _report_drops(self) -> None:
        dropped = self.queue.dropped
        if dropped > self.dropped_reported:
            self.store.events.add("warning", SOURCE, f"write queue full: {dropped - self.dropped_reported} records "
                                                     f"dropped ({dropped} since start)")
            self.dropped_reported = dropped
