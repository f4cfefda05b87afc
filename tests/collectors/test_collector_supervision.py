"""Collector supervision: a failing source is recorded, retried with back-off and recovers;
one broken collector never stops another; every thread stops promptly."""

from __future__ import annotations

import threading
import time

import pytest
from support import wait_for

from collectors.base import Collector, CollectorThread, SourceUnavailable
from monitor.app import Monitor
from monitor.config import Config
from monitor.model.store import Store
from monitor.web.api import health


class ScriptedCollector(Collector):
    """Raises whatever the test queues, else records a sample."""

    name = "scripted"

    def __init__(self, store: Store, interval_s: float = 0.05, name: str = "scripted") -> None:
        self.name = name
        super().__init__(store, interval_s)
        self.failures: list[BaseException] = []
        self.setups = 0
        self.readings = 0
        self.hang = threading.Event()
        self.release = threading.Event()

    def setup(self) -> None:
        self.setups += 1

    def collect(self, now: float) -> None:
        if self.hang.is_set():
            self.release.wait(30)
        if self.failures:
            raise self.failures.pop(0)
        self.readings += 1
        batch = self.batch(now)
        batch.add("scripted_value", self.readings)
        self.push(batch)


def test_exception_is_recorded_then_recovered() -> None:
    store = Store("h")
    collector = ScriptedCollector(store)
    runner = CollectorThread(collector)
    collector.failures = [RuntimeError("sensor on fire"), RuntimeError("still on fire")]

    delay1 = runner.step()
    h = collector.health.snapshot()
    assert (h["state"], h["error"], h["error_count"]) == ("error", "RuntimeError: sensor on fire", 1)
    delay2 = runner.step()
    assert delay1 is not None and delay2 is not None and delay2 > delay1  # exponential back-off
    assert runner.step() is None
    h = collector.health.snapshot()
    assert (h["state"], h["error"], h["error_count"]) == ("ok", None, 2)
    assert h["last_sample"] is not None
    assert collector.setups == 3  # setup() is retried after every failure
    texts = [e.text for e in store.events.read_after(0)]
    assert texts == ["scripted collector failed: RuntimeError: sensor on fire", "scripted collector recovered"]


def test_back_off_is_capped() -> None:
    collector = ScriptedCollector(Store("h"), interval_s=1.0)
    runner = CollectorThread(collector)
    collector.failures = [ValueError("x")] * 20
    delays = [runner.step() for _ in range(20)]
    assert delays[0] == 1.0
    assert max(d for d in delays if d is not None) == 5.0


def test_unavailable_source_waits_its_retry_and_is_not_an_error() -> None:
    store = Store("h")
    collector = ScriptedCollector(store)
    runner = CollectorThread(collector)
    collector.failures = [SourceUnavailable("no NVIDIA driver found", retry_s=60)]
    assert runner.step() == 60
    h = collector.health.snapshot()
    assert (h["state"], h["error"], h["error_count"]) == ("unavailable", "no NVIDIA driver found", 0)
    assert health(store)["status"] == "degraded"
    assert health(store)["reasons"] == ["scripted: unavailable — no NVIDIA driver found"]
    assert runner.step() is None
    assert health(store)["status"] == "ok"


def test_degraded_detail_makes_health_degraded() -> None:
    store = Store("h")
    collector = ScriptedCollector(store)
    CollectorThread(collector).step()
    collector.health.detail["degraded"] = "GPU 3 lost: GPU is lost"
    body = health(store)
    assert body["status"] == "degraded"
    assert body["reasons"] == ["scripted: GPU 3 lost: GPU is lost"]


def test_hanging_collector_is_reported_as_hung() -> None:
    store = Store("h")
    collector = ScriptedCollector(store, interval_s=0.1)
    collector.hang.set()
    runner = CollectorThread(collector)
    runner.start()
    try:
        wait_for(lambda: collector.health.snapshot()["state"] == "error", timeout=10, what="hung state")
        assert collector.health.snapshot()["error"].startswith("hung: a reading has not returned for")
        collector.hang.clear()
        collector.release.set()
        wait_for(lambda: collector.health.snapshot()["state"] == "ok", timeout=10, what="recovery")
    finally:
        runner.stop()
        assert runner.join(5)


def test_one_broken_collector_never_stops_another() -> None:
    store = Store("h")
    good = ScriptedCollector(store, name="good")
    bad = ScriptedCollector(store, name="bad")
    bad.failures = [RuntimeError("boom")] * 1000
    monitor = Monitor(Config(), store=store, collectors=[good, bad])
    monitor.start()
    try:
        wait_for(lambda: good.readings >= 10, timeout=10, what="good collector readings")
        assert bad.health.snapshot()["state"] == "error"
        assert bad.readings == 0
    finally:
        assert monitor.stop(timeout_s=5)


def test_threads_stop_within_5_seconds_even_with_long_intervals() -> None:
    store = Store("h")
    slow = ScriptedCollector(store, interval_s=3600, name="slow")
    failing = ScriptedCollector(store, interval_s=0.05, name="failing")
    failing.failures = [SourceUnavailable("gone", retry_s=3600)]
    monitor = Monitor(Config(), store=store, collectors=[slow, failing])
    monitor.start()
    wait_for(lambda: slow.readings == 1 and failing.health.snapshot()["state"] == "unavailable", timeout=10)
    started = time.monotonic()
    assert monitor.stop(timeout_s=5)
    assert time.monotonic() - started < 5
    assert not any(t.alive for t in monitor.threads)


@pytest.mark.parametrize("exc", [MemoryError("oom"), KeyError("field"), OSError(5, "I/O error")])
def test_any_exception_type_is_contained(exc: BaseException) -> None:
    collector = ScriptedCollector(Store("h"))
    collector.failures = [exc]
    CollectorThread(collector).step()
    assert collector.health.snapshot()["state"] == "error"
    assert type(exc).__name__ in collector.health.snapshot()["error"]
