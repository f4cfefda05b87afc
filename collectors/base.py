"""Collector base class and the supervising thread that runs it.

A collector owns one source and turns each reading into samples and a state document in the store.
The thread around it catches every exception, records it on the collector's health, backs off and
retries, so one broken source never stops another.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from typing import Any, Literal

from monitor.samples import SampleBatch
from monitor.store import Store

log = logging.getLogger(__name__)

State = Literal["starting", "ok", "error", "unavailable", "disabled"]
MAX_BACKOFF_S = 5.0  # short cap so a fault that clears is picked up again within seconds
HUNG_AFTER_INTERVALS = 3


class SourceUnavailable(Exception):
    """The source is absent (no driver, no device); not a bug. Retried after `retry_s`."""

    def __init__(self, reason: str, retry_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_s = retry_s


class CollectorHealth:
    """What /healthz and the wall say about one collector; updated by its thread, read by views."""

    def __init__(self, name: str, interval_s: float) -> None:
        self.name = name
        self.interval_s = interval_s
        self.state: State = "starting"
        self.error: str | None = None
        self.error_count = 0
        self.consecutive_errors = 0
        self.last_sample: float | None = None
        self.last_error_time: float | None = None
        self.busy_since: float | None = None
        self.detail: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _set(self, **fields: Any) -> None:
        with self._lock:
            for key, value in fields.items():
                setattr(self, key, value)

    def begin(self, now: float) -> None:
        self._set(busy_since=now)

    def ok(self, now: float) -> None:
        self._set(state="ok", error=None, consecutive_errors=0, last_sample=now, busy_since=None)

    def failed(self, state: State, reason: str, now: float) -> None:
        with self._lock:
            self.state = state
            self.error = reason
            self.busy_since = None
            self.last_error_time = now
            if state == "error":
                self.error_count += 1
                self.consecutive_errors += 1

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        with self._lock:
            state, error = self.state, self.error
            hung_for = now - self.busy_since if self.busy_since is not None else 0.0
            if hung_for > max(HUNG_AFTER_INTERVALS * self.interval_s, 2.0):
                state, error = "error", f"hung: a reading has not returned for {hung_for:.0f} s"
            return {
                "state": state,
                "error": error,
                "last_sample": self.last_sample,
                "error_count": self.error_count,
                "interval_s": self.interval_s,
                **self.detail,
            }


class Collector(ABC):
    """One source. Subclasses implement `collect`; `setup` and `close` are optional."""

    name: str = "collector"

    def __init__(self, store: Store, interval_s: float) -> None:
        self.store = store
        self.interval_s = interval_s
        self.health = CollectorHealth(self.name, interval_s)
        store.register_health(self.name, self.health)

    def setup(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Open the source; called before the first reading and again after a failure."""

    @abstractmethod
    def collect(self, now: float) -> None:
        """Take one reading and push it to the store."""

    def close(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Release the source."""

    def batch(self, now: float) -> SampleBatch:
        return SampleBatch(self.store.host, now)

    def push(self, batch: SampleBatch) -> None:
        self.store.append(batch.samples, self.interval_s)


class CollectorThread:
    """Runs a collector at its interval in a daemon thread, supervising every reading."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"collector-{collector.name}", daemon=True)
        self._needs_setup = True

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        c = self.collector
        next_due = time.monotonic()
        while not self._stop.is_set():
            delay = self.step()
            # Keep a steady cadence when healthy; after a failure wait the back-off from now.
            next_due = next_due + c.interval_s if delay is None else time.monotonic() + delay
            next_due = max(next_due, time.monotonic())
            self._stop.wait(next_due - time.monotonic())
        try:
            c.close()
        except Exception:  # closing a broken source must not hide the shutdown
            log.exception("closing collector %s failed", c.name)

    def step(self) -> float | None:
        """One supervised reading. Returns None when healthy, else the seconds to wait before retrying."""
        c, health, events = self.collector, self.collector.health, self.collector.store.events
        now = time.time()
        previous = health.state
        health.begin(now)
        try:
            if self._needs_setup:
                c.setup()
                self._needs_setup = False
            c.collect(now)
        except SourceUnavailable as exc:
            self._needs_setup = True
            health.failed("unavailable", exc.reason, now)
            if previous != "unavailable":
                events.add("warning", c.name, f"{c.name} unavailable: {exc.reason}")
            return exc.retry_s if exc.retry_s is not None else max(c.interval_s, MAX_BACKOFF_S)
        except Exception as exc:
            self._needs_setup = True
            reason = f"{type(exc).__name__}: {exc}"
            health.failed("error", reason, now)
            if previous != "error":
                log.warning("collector %s failed: %s", c.name, reason, exc_info=True)
                events.add("error", c.name, f"{c.name} collector failed: {reason}")
            return min(c.interval_s * 2 ** (health.consecutive_errors - 1), max(MAX_BACKOFF_S, c.interval_s))
        health.ok(time.time())
        if previous in ("error", "unavailable"):
            events.add("info", c.name, f"{c.name} collector recovered")
        return None
