"""Prompt file events from watchdog, under supervision; the periodic rescan covers what events miss.

Events only say "look here soon": the handler records the path in a set that the runs collector
drains each tick. Network filesystems (NFS, SMB) send no events and inotify queues overflow and
coalesce, so the collector also rescans every `runs.rescan_s` whatever happens here.

Supervision: an exception inside the handler is caught, logged as an event and answered with a
full rescan (nothing is lost); if the observer thread dies anyway (or a root's watch ends, e.g.
the root was deleted and recreated), `ensure_running()` starts a new observer, logs the restart
and asks for a rescan. A root whose watch cannot be set up (inotify watch limit) is left to the
rescan and reported.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings
from typing import Any

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from monitor.model.run_registry import EventSink

log = logging.getLogger(__name__)
# watchdog warns when a new directory's watch races its own recursive set-up: harmless, and noisy.
warnings.filterwarnings("ignore", message="Callback with id .* already exists", category=RuntimeWarning)

# Our own reads open and close files: never ask for open/close-without-write events (a feedback loop).
WATCHED_EVENTS: list[type[FileSystemEvent]] = [
    FileModifiedEvent, FileCreatedEvent, FileDeletedEvent, FileMovedEvent, FileClosedEvent,
    DirCreatedEvent, DirDeletedEvent, DirMovedEvent,
]
MAX_PENDING = 100_000
FAILURE_LOG_EVERY_S = 60.0  # more distinct paths than this between two ticks: drop them and rescan
# A removed root whose watch lives on (its dentry pinned by a process's cwd below it sends no
# IN_DELETE_SELF) is found by looking whether each watched root still exists, this often.
ROOT_CHECK_S = 1.0


class SupervisedObserver(Observer):  # type: ignore[misc,valid-type]
    """An observer that remembers why its thread ended instead of dying silently."""

    def __init__(self) -> None:
        super().__init__()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            super().run()
        except BaseException as exc:
            self.failure = exc
            log.exception("file-watch observer thread failed")


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: RunWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            self.watcher.note(event)
        except Exception as exc:  # never let a bad event end the observer
            self.watcher.handler_failed(exc)


class RunWatcher:
    def __init__(self, events: EventSink, source: str = "runs") -> None:
        self.events = events
        self.source = source
        self.observer: SupervisedObserver | None = None
        self.roots: list[str] = []
        self.unwatched: dict[str, str] = {}  # root -> why it has no events (rescan only)
        self.restarts = 0
        self.last_restart: tuple[float, str] | None = None  # (Unix time, why) of the last restart after a fault
        self.handler_errors = 0
        self._pending: set[str] = set()
        self._rescan = False
        self._last_failure_logged = -FAILURE_LOG_EVERY_S
        self._next_root_check = 0.0
        self._lock = threading.Lock()
        self._handler = _Handler(self)

    # -- observer thread side ------------------------------------------------------------------
    def note(self, event: FileSystemEvent) -> None:
        paths = [os.fsdecode(event.src_path)]
        dest = getattr(event, "dest_path", "")
        if dest:
            paths.append(os.fsdecode(dest))
        with self._lock:
            if len(self._pending) >= MAX_PENDING:  # a flood: forget the paths, walk everything instead
                self._pending.clear()
                self._rescan = True
                return
            self._pending.update(paths)

    def handler_failed(self, exc: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            self.handler_errors += 1
            self._rescan = True
            quiet = now - self._last_failure_logged < FAILURE_LOG_EVERY_S
            if not quiet:
                self._last_failure_logged = now
        if not quiet:  # a storm of failing events is logged once a minute, all are counted
            log.warning("file-watch handler failed", exc_info=exc)
            self.events.add("error", self.source,
                            f"file-watch handler failed ({type(exc).__name__}: {exc}); rescanning")

    # -- collector thread side -------------------------------------------------------------------
    def drain(self) -> tuple[set[str], bool]:
        """Paths touched since the last call, and whether events may have been lost (then rescan all)."""
        with self._lock:
            pending, rescan = self._pending, self._rescan
            self._pending, self._rescan = set(), False
        return pending, rescan

    def start(self, roots: list[str]) -> None:
        self.roots = [os.path.abspath(r) for r in roots]
        self._start()

    def _start(self) -> None:
        observer = SupervisedObserver()
        self.unwatched = {}
        for root in self.roots:
            if not os.path.isdir(root):
                self.unwatched[root] = "missing"
                continue
            try:
                observer.schedule(self._handler, root, recursive=True, event_filter=WATCHED_EVENTS)
            except OSError as exc:
                reason = "inotify watch limit reached (fs.inotify.max_user_watches)" if exc.errno == 28 else str(exc)
                self.unwatched[root] = reason
                self.events.add("warning", self.source, f"no file events for {root}: {reason}; rescanning only")
        observer.daemon = True
        observer.start()
        self.observer = observer

    def ensure_running(self) -> None:
        """Restart the observer if its thread died or a root's watch ended; log why."""
        observer = self.observer
        if observer is None:
            return
        reason: str | None = None
        if not observer.is_alive():
            failure = observer.failure
            reason = f"{type(failure).__name__}: {failure}" if failure else "its thread ended"
        else:
            watching = {os.path.abspath(str(w.path)) for w in _live_watches(observer)}
            gone = [r for r in self.roots if r not in self.unwatched and r not in watching]
            back = [r for r in self.roots if self.unwatched.get(r) == "missing" and os.path.isdir(r)]
            vanished = [r for r in self.roots if r not in self.unwatched and not os.path.isdir(r)] \
                if self._root_check_due() else []
            if gone:
                reason = f"the watch on {gone[0]} ended"
            elif vanished:
                reason = f"{vanished[0]} disappeared"
            elif back:
                reason = None
                self._replace(f"root {back[0]} appeared", log_event=False)
                return
        if reason is not None:
            self._replace(reason, log_event=True)

    def _root_check_due(self) -> bool:
        now = time.monotonic()
        if now < self._next_root_check:
            return False
        self._next_root_check = now + ROOT_CHECK_S
        return True

    def _replace(self, reason: str, log_event: bool) -> None:
        self.stop()
        self._start()
        with self._lock:
            self._rescan = True
        if log_event:
            self.restarts += 1
            self.last_restart = (time.time(), reason)
            log.warning("file watcher restarted: %s", reason)
            self.events.add("warning", self.source, f"file watcher stopped ({reason}); restarted, rescanning")

    def stop(self) -> None:
        observer, self.observer = self.observer, None
        if observer is None:
            return
        try:
            observer.stop()
            if observer.is_alive() and threading.current_thread() is not observer:
                observer.join(timeout=2.0)
        except Exception:  # a broken observer must not block shutdown
            log.exception("stopping the file watcher failed")

    def state(self) -> dict[str, Any]:
        alive = bool(self.observer and self.observer.is_alive())
        return {"events": "on" if alive else "off", "observer_restarts": self.restarts,
                "handler_errors": self.handler_errors, "rescan_only_roots": dict(self.unwatched)}


def _live_watches(observer: SupervisedObserver) -> list[Any]:
    """Watches whose emitter thread still runs (an emitter ends when its root is deleted)."""
    live = []
    for emitter in list(observer.emitters):
        if emitter.is_alive():
            live.append(emitter.watch)
    return live
