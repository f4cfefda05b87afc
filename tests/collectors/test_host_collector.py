"""HostCollector against the real psutil of this machine, plus synthetic counters and sensors for the
cases a healthy machine never shows (counter resets, missing paths, sensors that fail)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest

from collectors.base import CollectorThread
from collectors.host import CounterRate, CounterRates, HostCollector, cpu_temperature, read_temperatures
from monitor.model.samples import make_labels
from monitor.model.store import Store

HOST = "test-host"
STATE_KEYS = {
    "cpu_percent", "cpu_per_core_percent", "cpu_count", "load_average", "memory_total_bytes",
    "memory_used_bytes", "memory_available_bytes", "memory_percent", "swap_total_bytes", "swap_used_bytes",
    "swap_percent", "disk_read_bytes_per_second", "disk_write_bytes_per_second", "net_rx_bytes_per_second",
    "net_tx_bytes_per_second", "temperatures", "cpu_temperature_celsius", "disks", "uptime_s", "boot_time",
}
RATE_NAMES = [
    "host_disk_read_bytes_per_second", "host_disk_write_bytes_per_second",
    "host_net_rx_bytes_per_second", "host_net_tx_bytes_per_second",
]


class FakeClock:
    """A monotonic clock the test advances by hand, so rates are exact and no test sleeps."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def latest(store: Store, name: str, **labels: object) -> float | None:
    found = store.latest((name, make_labels(host=HOST, **labels)))
    return found[1] if found else None


def system(store: Store) -> dict[str, Any]:
    state = store.state("system")
    assert state is not None, "the collector published no system state"
    return state[1]


def make(tmp_path: Path, disk_paths: list[Path] | None = None) -> tuple[Store, HostCollector, FakeClock]:
    store = Store(HOST)
    clock = FakeClock()
    paths = [tmp_path] if disk_paths is None else disk_paths
    collector = HostCollector(store, 1.0, disk_paths=paths, clock=clock)
    collector.setup()
    return store, collector, clock


def tick(collector: HostCollector, clock: FakeClock, now: float, dt: float = 1.0) -> None:
    clock.advance(dt)
    collector.collect(now)


# -- CounterRate / CounterRates: synthetic counters -------------------------------------------------

def test_counter_rate_first_reading_is_none_then_delta_over_time() -> None:
    rate = CounterRate()
    assert rate.update(1000, 10.0) is None
    assert rate.update(3000, 12.0) == pytest.approx(1000.0)
    assert rate.update(3000, 13.0) == 0.0


def test_counter_rate_reset_gives_none_and_rebases() -> None:
    rate = CounterRate()
    rate.update(10_000_000, 0.0)
    assert rate.update(500, 1.0) is None  # interface reset / wrap: no negative, no giant value
    assert rate.update(1500, 2.0) == pytest.approx(1000.0)  # measured from the new base


def test_counter_rate_clock_not_advanced_keeps_base_and_clock_backwards_rebases() -> None:
    rate = CounterRate()
    rate.update(0, 5.0)
    assert rate.update(100, 5.0) is None
    assert rate.update(400, 7.0) == pytest.approx(200.0)  # measured from the kept base (0 at t=5)
    assert rate.update(500, 6.0) is None
    assert rate.update(700, 8.0) == pytest.approx(100.0)


def test_counter_rate_missing_source_forgets_base() -> None:
    rate = CounterRate()
    rate.update(100, 0.0)
    assert rate.update(None, 1.0) is None
    assert rate.update(50, 2.0) is None  # no stale base survives a gap in the source
    assert rate.update(150, 3.0) == pytest.approx(100.0)


def test_counter_rates_one_interface_resetting_does_not_break_the_sum() -> None:
    rates = CounterRates()
    assert rates.update({"eth0": 1000, "eth1": 5000}, 0.0) is None
    assert rates.update({"eth0": 2000, "eth1": 5500}, 1.0) == pytest.approx(1500.0)
    assert rates.update({"eth0": 3000, "eth1": 10}, 2.0) == pytest.approx(1000.0)  # eth1 reset: eth0 only
    assert rates.update({"eth0": 4000, "eth1": 110}, 3.0) == pytest.approx(1100.0)


def test_counter_rates_interfaces_appearing_and_vanishing() -> None:
    rates = CounterRates()
    rates.update({"eth0": 0}, 0.0)
    assert rates.update({"eth0": 100, "usb0": 10**12}, 1.0) == pytest.approx(100.0)  # new nic: no rate yet
    assert rates.update({"usb0": 10**12 + 50}, 2.0) == pytest.approx(50.0)  # eth0 removed
    assert rates.update({"eth0": 7, "usb0": 10**12 + 60}, 3.0) == pytest.approx(10.0)  # eth0 back: new base
    assert rates.update({}, 4.0) is None
    assert rates.update(None, 5.0) is None


# -- the real collector on this machine -------------------------------------------------------------

def test_real_collector_publishes_sane_samples_and_state(tmp_path: Path) -> None:
    store, collector, clock = make(tmp_path)
    tick(collector, clock, 1_000.0)

    doc = system(store)
    assert set(doc) == STATE_KEYS
    json.dumps(doc, allow_nan=False)  # JSON-safe: no NaN/inf, only plain types

    cores = psutil.cpu_count()
    assert doc["cpu_count"] == cores
    assert len(doc["cpu_per_core_percent"]) == cores
    assert all(0.0 <= p <= 100.0 for p in doc["cpu_per_core_percent"])
    assert doc["cpu_percent"] == pytest.approx(sum(doc["cpu_per_core_percent"]) / cores)
    assert len(store.keys("host_cpu_core_percent")) == cores
    for core, percent in enumerate(doc["cpu_per_core_percent"]):
        assert latest(store, "host_cpu_core_percent", core=core) == pytest.approx(percent)
    assert latest(store, "host_cpu_percent") == pytest.approx(doc["cpu_percent"])

    assert len(doc["load_average"]) == 3 and all(x >= 0 for x in doc["load_average"])
    assert latest(store, "host_load1") == pytest.approx(doc["load_average"][0])
    assert latest(store, "host_load15") == pytest.approx(doc["load_average"][2])

    total = psutil.virtual_memory().total
    assert doc["memory_total_bytes"] == total == latest(store, "host_memory_total_bytes")
    assert 0 < doc["memory_used_bytes"] <= total
    assert 0 < doc["memory_available_bytes"] <= total
    assert doc["memory_used_bytes"] + doc["memory_available_bytes"] == total
    assert doc["memory_percent"] == pytest.approx(100.0 * doc["memory_used_bytes"] / total)
    assert 0.0 < doc["memory_percent"] <= 100.0
    assert latest(store, "host_memory_percent") == pytest.approx(doc["memory_percent"])
    assert 0 <= doc["swap_used_bytes"] <= max(doc["swap_total_bytes"], 0)
    assert 0.0 <= doc["swap_percent"] <= 100.0
    assert latest(store, "host_swap_used_bytes") == doc["swap_used_bytes"]

    assert doc["boot_time"] > 0 and doc["uptime_s"] >= 0
    assert [d["path"] for d in doc["disks"]] == [str(tmp_path)]
    disk = doc["disks"][0]
    assert "error" not in disk
    usage = psutil.disk_usage(str(tmp_path))
    assert disk["total_bytes"] == usage.total and 0.0 <= disk["used_ratio"] <= 1.0
    assert latest(store, "host_path_disk_used_ratio", path=tmp_path) == pytest.approx(disk["used_ratio"])


def test_real_rates_are_none_on_first_tick_then_non_negative_numbers(tmp_path: Path) -> None:
    store, collector, clock = make(tmp_path)
    tick(collector, clock, 1_000.0)
    doc = system(store)
    for name in RATE_NAMES:
        assert doc[name.removeprefix("host_")] is None
        assert latest(store, name) is None  # None is skipped, not stored as 0

    (tmp_path / "io").write_bytes(b"x" * 65536)  # some real I/O between the ticks
    tick(collector, clock, 1_001.0)
    doc = system(store)
    has_disk_counters = psutil.disk_io_counters(perdisk=False) is not None
    for name in RATE_NAMES:
        value = doc[name.removeprefix("host_")]
        if "disk" in name and not has_disk_counters:
            assert value is None
            continue
        assert isinstance(value, float) and math.isfinite(value) and value >= 0, (name, value)
        assert latest(store, name) == pytest.approx(value)
    json.dumps(doc, allow_nan=False)


def test_collector_thread_runs_the_collector_and_reports_healthy(tmp_path: Path) -> None:
    store = Store(HOST)
    thread = CollectorThread(HostCollector(store, 1.0, disk_paths=[tmp_path]))
    assert thread.step() is None  # step() runs setup() then collect(); None means healthy
    assert thread.step() is None
    assert store.health()["host"]["state"] == "ok"
    assert set(system(store)) == STATE_KEYS


# -- faults: counters, paths, sensors --------------------------------------------------------------

def nic(recv: int, sent: int) -> SimpleNamespace:
    return SimpleNamespace(bytes_recv=recv, bytes_sent=sent)


def test_network_counter_reset_never_gives_negative_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readings = iter([
        {"lo": nic(0, 0), "eth0": nic(1_000, 100), "eth1": nic(50_000, 500)},
        {"lo": nic(10**9, 10**9), "eth0": nic(3_000, 300), "eth1": nic(51_000, 600)},
        {"lo": nic(0, 0), "eth0": nic(20, 2), "eth1": nic(52_000, 700)},  # eth0 and lo reset
        {"lo": nic(5, 5), "eth0": nic(1_020, 102)},  # eth1 removed
    ])
    monkeypatch.setattr(psutil, "net_io_counters", lambda pernic=False, nowrap=True: next(readings))
    store, collector, clock = make(tmp_path)
    seen: list[tuple[float | None, float | None]] = []
    for i in range(4):
        tick(collector, clock, 1_000.0 + i, dt=2.0)
        doc = system(store)
        seen.append((doc["net_rx_bytes_per_second"], doc["net_tx_bytes_per_second"]))
    # lo is never counted; eth0's reset drops only eth0 out of that interval; eth1 leaving is no reset.
    assert seen == [(None, None), (1_500.0, 150.0), (500.0, 50.0), (500.0, 50.0)]
    assert latest(store, "host_net_rx_bytes_per_second") == 500.0


def test_disk_counter_wrap_and_missing_disk_counters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readings = iter([
        SimpleNamespace(read_bytes=2**32 - 100, write_bytes=1_000),
        SimpleNamespace(read_bytes=10, write_bytes=3_000),  # read counter wrapped
        SimpleNamespace(read_bytes=410, write_bytes=3_000),
        None,  # counters gone (container without /proc/diskstats)
    ])
    monkeypatch.setattr(psutil, "disk_io_counters", lambda perdisk=False, nowrap=True: next(readings))
    store, collector, clock = make(tmp_path)
    seen = []
    for i in range(4):
        tick(collector, clock, 1_000.0 + i)
        doc = system(store)
        seen.append((doc["disk_read_bytes_per_second"], doc["disk_write_bytes_per_second"]))
    assert seen == [(None, None), (None, 2_000.0), (400.0, 0.0), (None, None)]
    chunk = store.read_after(("host_disk_read_bytes_per_second", make_labels(host=HOST)), 0)
    assert chunk is not None and chunk.values[:, 0].tolist() == [400.0]


def test_missing_and_unreadable_paths_give_error_entries_others_still_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, missing, locked = tmp_path / "runs", tmp_path / "gone", tmp_path / "locked"
    good.mkdir()
    locked.mkdir()
    real_usage = psutil.disk_usage

    def disk_usage(path: str) -> Any:
        if path == str(locked):
            raise PermissionError(13, "Permission denied", path)
        return real_usage(path)

    monkeypatch.setattr(psutil, "disk_usage", disk_usage)
    store, collector, clock = make(tmp_path, disk_paths=[missing, good, locked])
    tick(collector, clock, 1_000.0)
    disks = system(store)["disks"]
    assert [d["path"] for d in disks] == [str(missing), str(good), str(locked)]
    assert disks[0] == {"path": str(missing), "error": "not found"}
    assert disks[2] == {"path": str(locked), "error": "permission denied"}
    assert disks[1]["total_bytes"] > 0 and 0.0 <= disks[1]["used_ratio"] <= 1.0
    assert disks[1]["used_bytes"] + disks[1]["free_bytes"] <= disks[1]["total_bytes"]
    assert latest(store, "host_path_disk_used_ratio", path=good) == pytest.approx(disks[1]["used_ratio"])
    assert [dict(k[1])["path"] for k in store.keys("host_path_disk_used_ratio")] == [str(good)]
    assert latest(store, "host_cpu_percent") is not None  # the rest of the reading went through


def raising() -> Any:
    raise RuntimeError("hwmon read failed")


@pytest.mark.parametrize("sensors", [raising, dict, lambda: None], ids=["raises", "empty", "none"])
def test_sensors_absent_or_failing_give_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sensors: Callable[[], Any]
) -> None:
    monkeypatch.setattr(psutil, "sensors_temperatures", sensors, raising=False)
    store, collector, clock = make(tmp_path)
    tick(collector, clock, 1_000.0)
    doc = system(store)
    assert doc["temperatures"] is None and doc["cpu_temperature_celsius"] is None
    assert store.keys("host_temperature_celsius") == []


def test_platform_without_sensor_support(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(psutil, "sensors_temperatures", raising=False)
    assert read_temperatures() is None


def test_this_machine_temperatures_match_psutil(tmp_path: Path) -> None:
    store, collector, clock = make(tmp_path)
    tick(collector, clock, 1_000.0)
    has_sensors = any(psutil.sensors_temperatures().values())
    temperatures = system(store)["temperatures"]
    assert (temperatures is not None) == has_sensors


def temp(label: str, current: float) -> SimpleNamespace:
    return SimpleNamespace(label=label, current=current, high=90.0, critical=100.0)


def test_fake_sensor_readings_become_samples_and_cpu_temperature(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = {
        "coretemp": [temp("Package id 0", 61.0), temp("Core 0", 58.0), temp("Core 1", 66.5)],
        "nvme": [temp("Composite", 40.0), temp("Composite", 42.0), temp("", 39.0)],
        "acpitz": [temp("", 70.0), temp("broken", math.nan)],  # hotter, but not a CPU sensor
    }
    monkeypatch.setattr(psutil, "sensors_temperatures", lambda fahrenheit=False: fake, raising=False)
    store, collector, clock = make(tmp_path)
    tick(collector, clock, 1_000.0)
    doc = system(store)
    assert doc["temperatures"] == {
        "coretemp/Package id 0": 61.0, "coretemp/Core 0": 58.0, "coretemp/Core 1": 66.5,
        "nvme/Composite": 40.0, "nvme/Composite#2": 42.0, "nvme/temp3": 39.0, "acpitz/temp1": 70.0,
    }
    assert doc["cpu_temperature_celsius"] == 66.5
    assert latest(store, "host_temperature_celsius", sensor="coretemp/Package id 0") == 61.0
    assert latest(store, "host_temperature_celsius", sensor="nvme/Composite#2") == 42.0
    assert len(store.keys("host_temperature_celsius")) == 7
    json.dumps(doc, allow_nan=False)


def test_cpu_temperature_picks_amd_and_arm_chips() -> None:
    assert cpu_temperature({"k10temp/Tctl": 55.0, "k10temp/Tccd1": 49.0, "amdgpu/edge": 80.0}) == 55.0
    assert cpu_temperature({"cpu_thermal/temp1": 47.5}) == 47.5
    assert cpu_temperature({"nvme/Composite": 40.0}) is None
    assert cpu_temperature(None) is None
