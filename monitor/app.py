"""The process-wide model: one store and its collector threads, started once per process.

The one place that wires the sources to the store: every declared collector (collectors/registry.py)
with its config section, the GPU usage accountant, then the alert engine, last because it only reads
what the others write.
"""

from __future__ import annotations

import logging
import time

from collectors.base import Collector, CollectorThread, HangWatch
from collectors.registry import build_collectors as build_declared
from collectors.registry import declared_specs
from monitor.alerts.engine import build_alert_engine
from monitor.config import Config
from monitor.model.settings import CollectorContext
from monitor.model.storage import DurableStore, StorageSettings
from monitor.model.store import Store
from monitor.usage.accountant import build_accountant

log = logging.getLogger(__name__)


def collector_context(config: Config, store: Store) -> CollectorContext:
    """What the collectors may know of the sections that are not their own."""
    return CollectorContext(
        store=store,
        run_roots=tuple(config.runs.roots),
        disk_full_ratio=config.thresholds.disk_ratio,
        redaction_patterns=tuple(config.redaction.extra_patterns),
        gpu_enabled=config.gpu.enabled,
    )


def build_collectors(config: Config, store: Store) -> list[Collector]:
    """The collectors the configuration turns on, the alert engine last."""
    sections = {spec.name: getattr(config, spec.name) for spec in declared_specs()}
    collectors = build_declared(sections, collector_context(config, store))
    accountant = build_accountant(config, store)  # GPU-hours per user and run (monitor/usage)
    if accountant is not None:
        collectors.append(accountant)
    alerts = build_alert_engine(config, store)
    if alerts is not None:  # last: it only reads what the others write
        collectors.append(alerts)
    return collectors


class Monitor:
    """Owns the store and the collectors; views get the store and never sample anything."""

    def __init__(
        self, config: Config, store: Store | None = None, collectors: list[Collector] | None = None
    ) -> None:
        self.config = config
        self.store = store or Store(
            host=config.host_label,
            window_s=config.history.window_s,
            day_tier=config.history.day_tier,
            event_capacity=config.events.capacity,
        )
        self.storage = open_storage(config, self.store)  # fills the store before any collector exists
        self.collectors = build_collectors(config, self.store) if collectors is None else collectors
        self.threads = [CollectorThread(c) for c in self.collectors]
        self.hang_watch = HangWatch(self.threads)
        self.started = False

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        if self.storage is not None:
            self.storage.start()
        for thread in self.threads:
            thread.start()
        self.hang_watch.start()
        names = ", ".join(c.name for c in self.collectors) or "none"
        self.store.events.add("info", "labwall", f"labwall started on {self.config.host_label} (collectors: {names})")

    def stop(self, timeout_s: float = 4.0) -> bool:
        """Stop every collector thread; True when all have ended within `timeout_s`."""
        self.hang_watch.stop()
        for thread in self.threads:
            thread.stop()
        deadline = time.monotonic() + timeout_s
        stopped = True
        for thread in self.threads:
            if not thread.join(max(0.0, deadline - time.monotonic())):
                log.warning("collector %s did not stop within %.1f s", thread.collector.name, timeout_s)
                stopped = False
        if self.storage is not None:
            self.storage.stop(timeout_s=1.0)  # the last queued minutes and events reach the file
        log.info("labwall stopped (collector threads %s)", "joined" if stopped else "NOT all joined")
        return stopped


def open_storage(config: Config, store: Store) -> DurableStore | None:
    """The durable store when enabled and its path resolved (main.py resolves it; a Config built in
    code has none, so tests and benchmarks stay memory-only unless they set one)."""
    if not config.storage.enabled or config.storage.path is None:
        return None
    day = 86400.0
    settings = StorageSettings(
        path=config.storage.path,
        flush_s=config.storage.flush_s,
        minute_retention_s=config.storage.minute_retention_days * day,
        hour_retention_s=config.storage.hour_retention_days * day,
        queue_max=config.storage.queue_max,
        recent_alerts=config.alerts.recent_max,
    )
    storage = DurableStore(store, settings)
    storage.open_and_restore()  # NewerSchemaError stops start-up (main.py says why)
    return storage
