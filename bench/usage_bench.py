"""GPU usage accounting: /api/usage latency over 14 days of 8 GPUs, and the accountant's CPU per tick.

  /api/usage      the ledger filled with synthetic minute records (14 days x 8 GPUs; GPUs 2 and 6
                  shared by two users: ~181k records), then GET /api/usage?by=user (and by=run,
                  by=gpu, bucket=day) through the real route and request guard (FastAPI's
                  TestClient, in process): p50 / p95 ms
  accountant      8 simulated GPUs (the default demo lab), one "gpu" reading a second for
                  `--ticks` seconds of controlled time: CPU per tick (minute closes included)

    .venv/bin/python bench/usage_bench.py [--quick] [--days 14] [--requests 200] [--ticks 3600]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi import FastAPI
from fastapi.testclient import TestClient

from collectors.gpu.collector import GpuCollector
from collectors.gpu.processes import ProcessLookup
from collectors.gpu.sim_nvml import SimulatedNvml
from collectors.gpu.simulated import SimulatedBackend
from monitor.model.store import Store
from monitor.model.usage import UsageRecord
from monitor.usage.accountant import UsageAccountant
from monitor.web.http_guard import install_request_guard
from monitor.web.usage_api import register_usage_api

GPUS = 8
USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")


def fill(store: Store, days: float, now: float) -> int:
    """Minute records ending at `now`: each GPU one user (a new run every 6 h), GPUs 2 and 6 two."""
    start = (now - days * 86400) // 60 * 60
    records = []
    for m in range(int(days * 1440)):
        t = start + 60 * m
        for gpu in range(GPUS):
            holders = [(USERS[gpu], 0.75), (USERS[(gpu + 3) % GPUS], 0.25)] if gpu in (2, 6) else [(USERS[gpu], 1.0)]
            for user, share in holders:
                run = f"{user}-{int(t // 21600)}"
                idle = 60 * share if (m + gpu) % 7 == 0 else 0.0
                records.append(UsageRecord(t, 60.0, "bench", str(gpu), f"GPU-{gpu}", user, run, 60.0, 60 * share,
                                           idle, 45 * share, 60 * share * 550))
    store.usage.add(records)
    return len(records)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def api_figures(days: float, requests: int) -> None:
    store = Store("bench")
    now = time.time()
    started = time.perf_counter()
    count = fill(store, days, now)
    print(f"ledger: {count} records ({days:g} days x {GPUS} GPUs) added in {time.perf_counter() - started:.2f} s")
    store.usage.columns(0, 1)  # fold the added rows into the columns once, as the first query would
    size = store.usage.nbytes
    print(f"ledger memory: {size / 1e6:.1f} MB of columns ({size / count:.0f} B/record)")
    app = FastAPI()
    install_request_guard(app)
    register_usage_api(app, store)
    client = TestClient(app)
    queries = ["/api/usage?by=user", "/api/usage?by=run", "/api/usage?by=gpu",
               f"/api/usage?by=user&since={now - days * 86400:.0f}&bucket=day"]
    for query in queries:
        client.get(query).raise_for_status()  # warm-up
        times, size = [], 0
        for _ in range(requests):
            t0 = time.perf_counter()
            answer = client.get(query)
            times.append(1000 * (time.perf_counter() - t0))
            size = len(answer.content)
        print(f"{query}: p50 {statistics.median(times):.1f} ms, p95 {percentile(times, 0.95):.1f} ms, "
              f"{size / 1024:.0f} KiB ({requests} requests)")


def accountant_figures(ticks: int) -> None:
    t0 = (time.time() // 3600) * 3600
    clock = [t0]
    store = Store("bench")
    nvml = SimulatedNvml(GPUS, clock=lambda: clock[0])
    gpu = GpuCollector(store, 1.0, SimulatedBackend(nvml), processes=ProcessLookup(None, nvml.process_info),
                       clock=lambda: clock[0])
    accountant = UsageAccountant(store, 1.0, 5.0, 5.0, clock=lambda: clock[0])
    cpu = 0.0
    for k in range(ticks):
        clock[0] = t0 + k
        gpu.collect(clock[0])
        started = time.process_time()
        accountant.collect(clock[0])
        cpu += time.process_time() - started
    per_tick = cpu / ticks
    print(f"accountant CPU per tick, {GPUS} GPUs: {1e6 * per_tick:.0f} us "
          f"(= {100 * per_tick:.3f} % of one core at 1 s; {ticks} ticks, {store.usage.cursor} records closed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 day, 20 requests, 300 ticks (checks it runs)")
    parser.add_argument("--days", type=float, default=14.0)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--ticks", type=int, default=3600)
    args = parser.parse_args()
    if args.quick:
        args.days, args.requests, args.ticks = 1.0, 20, 300
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}")
    api_figures(args.days, args.requests)
    accountant_figures(args.ticks)


if __name__ == "__main__":
    main()
