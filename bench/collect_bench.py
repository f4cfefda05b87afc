"""Collector and store costs: prints CPU of the collectors at 1 s with 8 simulated GPUs, store
append / cursor-read throughput, and RSS over a simulated 24 h at 1 s (8 GPUs + host).

    .venv/bin/python bench/collect_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectors.base import CollectorThread
from collectors.gpu import build_gpu_collector
from collectors.gpu.nvml import NvmlBackend
from collectors.gpu.sim_nvml import SimulatedNvml
from collectors.host import HostCollector
from monitor.config import Config
from monitor.model.samples import SampleBatch
from monitor.model.settings import CollectorContext
from monitor.model.store import Store

NVML_CALL_MS = 0.4  # measured cost of one real NVML call (issue figures)


class CountingNvml:
    """Wraps an NVML implementation and counts the nvml* calls the collector makes."""

    def __init__(self, inner: SimulatedNvml) -> None:
        self._inner = inner
        self.calls = 0

    def __getattr__(self, name: str) -> object:
        attr = getattr(self._inner, name)
        if not (name.startswith("nvml") and callable(attr)):
            return attr

        def counted(*args: object, **kwargs: object) -> object:
            self.calls += 1
            return attr(*args, **kwargs)

        return counted


GPU_SERIES = [
    "gpu_utilization_percent", "gpu_memory_utilization_percent", "gpu_memory_used_bytes",
    "gpu_memory_total_bytes", "gpu_temperature_celsius", "gpu_power_watts", "gpu_power_limit_watts",
    "gpu_fan_percent", "gpu_clock_sm_mhz", "gpu_clock_memory_mhz", "gpu_pcie_rx_bytes_per_second",
    "gpu_pcie_tx_bytes_per_second", "gpu_ecc_errors_corrected_total", "gpu_ecc_errors_uncorrected_total",
]


def collectors_cpu(seconds: float) -> dict[str, float]:
    """Run the host and the 8-GPU simulated collectors at 1 s in their threads; CPU % of one core."""
    config = Config.model_validate({"gpu": {"backend": "simulated", "simulated_count": 8}})
    store = Store(config.host_label, window_s=config.history.window_s)
    simulated = SimulatedNvml(8)
    counting = CountingNvml(simulated)
    gpu = build_gpu_collector(config.gpu, CollectorContext(store), NvmlBackend(counting, name="simulated"))
    assert gpu is not None
    gpu.processes.resolver = simulated.process_info
    threads = [CollectorThread(HostCollector(store, 1.0)), CollectorThread(gpu)]
    proc = psutil.Process()
    before = proc.cpu_times()
    started = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(seconds)  # the benchmark's measuring window, not a wait on a condition
    for t in threads:
        t.stop()
    for t in threads:
        t.join(5)
    elapsed = time.monotonic() - started
    after = proc.cpu_times()
    cpu = (after.user - before.user) + (after.system - before.system)
    ticks = max(1.0, round(elapsed))
    return {"cpu_percent_of_core": 100 * cpu / elapsed, "seconds": elapsed,
            "nvml_calls_per_tick": counting.calls / ticks, "series": store.stats()["series"]}


def store_throughput(points: int) -> dict[str, float]:
    store = Store("bench", window_s=600)
    per_tick = 8 * len(GPU_SERIES)
    ticks = points // per_tick
    batches = []
    for t in range(ticks):
        batch = SampleBatch("bench", 1_000_000.0 + t)
        for gpu in range(8):
            for name in GPU_SERIES:
                batch.add(name, float(t % 100), gpu=gpu, uuid=f"GPU-{gpu}")
        batches.append(batch.samples)
    append_s = read_s = 0.0
    cursor = read = 0
    for samples in batches:
        t0 = time.perf_counter()
        store.append(samples, 1.0)
        t1 = time.perf_counter()
        # A viewer reading only what is new after each tick (the wall's flush path).
        for chunk in store.changed_after(cursor).values():
            read += len(chunk)
        cursor = store.cursor
        append_s += t1 - t0
        read_s += time.perf_counter() - t1
    return {"append_points_per_s": ticks * per_tick / append_s, "cursor_read_points_per_s": read / read_s,
            "cursor_read_points": read, "series": per_tick}


def day_rss(hours: float) -> list[tuple[float, float]]:
    """Append `hours` of 1 s samples for 8 GPUs + host with a fake clock; RSS (MB) every 2 h."""
    config = Config()
    store = Store("bench", window_s=config.history.window_s)
    proc = psutil.Process()
    cores = psutil.cpu_count() or 2
    host_series = ["host_cpu_percent", "host_load1", "host_load5", "host_load15", "host_memory_used_bytes",
                   "host_memory_percent", "host_swap_percent", "host_disk_read_bytes_per_second",
                   "host_disk_write_bytes_per_second", "host_net_rx_bytes_per_second",
                   "host_net_tx_bytes_per_second"]
    readings: list[tuple[float, float]] = []
    t0 = 1_700_000_000.0
    seconds = int(hours * 3600)
    for s in range(seconds):
        batch = SampleBatch("bench", t0 + s)
        v = float(s % 97)
        for gpu in range(8):
            for name in GPU_SERIES:
                batch.add(name, v, gpu=gpu, uuid=f"GPU-{gpu}")
        for name in host_series:
            batch.add(name, v)
        for core in range(cores):
            batch.add("host_cpu_core_percent", v, core=core)
        store.append(batch.samples, 1.0)
        if s % 7200 == 0 or s == seconds - 1:
            gc.collect()
            readings.append((s / 3600, proc.memory_info().rss / 2**20))
    return readings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="short run (seconds, not minutes)")
    args = parser.parse_args()
    cpu_s, points, hours = (5.0, 50_000, 1.0) if args.quick else (60.0, 1_000_000, 24.0)
    print(f"machine: {platform.node()} {platform.machine()} {psutil.cpu_count()} cores, "
          f"Python {platform.python_version()}, pid {os.getpid()}")
    cpu = collectors_cpu(cpu_s)
    print(f"collectors_cpu_percent_of_one_core: {cpu['cpu_percent_of_core']:.2f} "
          f"(host + 8 simulated GPUs at 1 s over {cpu['seconds']:.0f} s; target <= 2)")
    calls = cpu["nvml_calls_per_tick"]
    print(f"nvml_calls_per_tick_8_gpus: {calls:.0f} (at {NVML_CALL_MS} ms each on a real driver: "
          f"~{calls * NVML_CALL_MS:.0f} ms of NVML per tick; not measured here: no GPU)")
    tp = store_throughput(points)
    print(f"store_append_points_per_s: {tp['append_points_per_s']:,.0f}")
    print(f"store_cursor_read_points_per_s: {tp['cursor_read_points_per_s']:,.0f} "
          f"(changed_after(cursor) over {tp['series']} series after every tick)")
    readings = day_rss(hours)
    for h, rss in readings:
        print(f"rss_mb_at_{h:04.1f}h: {rss:.1f}")
    warm = readings[min(1, len(readings) - 1)][1]
    print(f"rss_mb_after_{hours:g}h: {readings[-1][1]:.1f} (target <= 150)")
    print(f"rss_growth_after_warmup_percent: {100 * (readings[-1][1] - warm) / warm:.1f}")


if __name__ == "__main__":
    main()
