"""Collector base class and the supervising thread that runs it.

A collector owns one source and turns each reading into samples and a state document in the store.
The thread around it catches every exception, records it on the collector's health, backs off and
retries, so one broken source never stops another. A reading that hangs (a wedged driver, a hung
network mount) cannot be interrupted from Python; the HangWatch thread notices it, logs it as an
event while it lasts, and its end is logged when the reading returns.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from typing import Any, Literal

from monitor.model.samples import SampleBatch
from monitor.model.store import Store

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
            if state == "error":
                self.error_count += 1
                self.consecutive_errors += 1

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        with self._lock:
            state, error = self.state, self.error
            hung_for = self._hung_for(now)
            extra: dict[str, Any] = {}
            if hung_for is not None:
                state, error = "error", f"hung: a reading has not returned for {hung_for:.0f} s"
                extra["hung_since"] = self.busy_since
            return {
                "state": state,
                "error": error,
                "last_sample": self.last_sample,
                "error_count": self.error_count,
                "interval_s": self.interval_s,
                **extra,
                **self.detail,
            }

    @property
    def hung_after_s(self) -> float:
        return max(HUNG_AFTER_INTERVALS * self.interval_s, 2.0)

    def _hung_for(self, now: float) -> float | None:
        """Seconds the current reading has been running, when that is long enough to call it hung."""
        if self.busy_since is None or now - self.busy_since <= self.hung_after_s:
            return None
        return now - self.busy_since

    def hung_for(self, now: float) -> float | None:
        with self._lock:
            return self._hung_for(now)


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
        self._hang_lock = threading.Lock()
        self._hung_reported: float | None = None  # when the hung reading started, once it was logged

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

    def check_hung(self, now: float) -> bool:
        """Log a reading that has hung for longer than the health limit, once; True while it hangs.
        Called from the HangWatch thread: the collector's own thread is the one that is stuck."""
        health = self.collector.health
        hung_for = health.hung_for(now)
        if hung_for is None:
            return False
        with self._hang_lock:
            if self._hung_reported is not None:
                return True
            self._hung_reported = now - hung_for
        name = self.collector.name
        log.warning("collector %s hung: a reading has not returned for %.0f s", name, hung_for)
        self.collector.store.events.add(
            "error", name, f"{name} collector hung: a reading has not returned for {hung_for:.0f} s"
        )
        return True

    def _end_hang(self) -> None:
        """After a reading returned: if it had been logged as hung, log that it is over."""
        with self._hang_lock:
            began, self._hung_reported = self._hung_reported, None
        if began is not None:
            name = self.collector.name
            took = time.time() - began
            log.warning("collector %s: the hung reading returned after %.1f s", name, took)
            self.collector.store.events.add("info", name, f"{name} collector recovered: the hung reading "
                                                          f"returned after {took:.0f} s")

    def step(self) -> float | None:
        """One supervised reading. Returns None when healthy, else the seconds to wait before retrying."""
        try:
            return self._step()
        finally:
            self._end_hang()

    def _step(self) -> float | None:
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


class HangWatch:
    """One daemon thread that looks at every collector thread every `every_s` and logs hung readings."""

    def __init__(self, threads: list[CollectorThread], every_s: float = 0.5) -> None:
        self.threads = threads
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="collector-hang-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            now = time.time()
            for thread in self.threads:
                try:
                    thread.check_hung(now)
                except Exception:  # the watch must outlive whatever one check runs into
                    log.exception("checking collector %s for a hang failed", thread.collector.name)
