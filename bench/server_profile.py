"""Where the server's CPU goes with 8 simulated GPUs + host and one Chromium on the wall.

1. The whole server (as bench/vs_glances.py runs it), per thread (CPU of each thread over the
   window) and, for the event loop's thread, a cProfile by package (labwall's wall, NiceGUI,
   socket.io/engine.io, JSON, asyncio).
2. The GPU collector alone, in this process, at 1 s: with the simulated backend (the GPU model)
   and with a constant NVML double (tests/fake_nvml.py: no model, fixed readings). The difference is
   what the simulation costs; a real NVML backend replaces the model by driver calls.

    .venv/bin/python bench/server_profile.py [--seconds 60] [--collector-only] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import signal
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the test harness's helpers
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from browser_support import FULL_HD, launched_browser, start_server, wait_live
from fake_nvml import FakeNvml

from collectors.base import CollectorThread
from collectors.gpu import build_gpu_collector
from collectors.gpu.nvml import NvmlBackend
from collectors.gpu.sim_nvml import SimulatedNvml
from monitor.config import Config
from monitor.model.settings import CollectorContext
from monitor.model.store import Store

BENCH = Path(__file__).resolve().parent
GPUS = 8
SETTLE_S = 3.0
GROUPS = [("labwall wall/web", ("/monitor/wall/", "/monitor/web/")), ("labwall other", ("/monitor/",)),
          ("collectors", ("/collectors/",)), ("nicegui", ("/nicegui/",)),
          ("socket.io / engine.io", ("/socketio/", "/engineio/")),
          ("uvicorn / starlette", ("/uvicorn/", "/starlette/")), ("asyncio", ("/asyncio/",)),
          ("json / orjson", ("json",))]


def group(filename: str) -> str:
    for name, needles in GROUPS:
        if any(n in filename for n in needles):
            return name
    return "other (builtins, stdlib)"


def thread_times(pid: int) -> dict[int, float]:
    return {t.id: t.user_time + t.system_time for t in psutil.Process(pid).threads()}


def whole_server(seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="labwall-profile-") as tmp:
        out = Path(tmp) / "loop.prof"
        config = {"gpu": {"backend": "simulated", "simulated_count": GPUS, "interval_s": 1.0},
                  "host": {"interval_s": 1.0}, "wall": {"flush_interval_s": 1.0}}
        server = start_server(Path(tmp), config, script=BENCH / "profiled_main.py",
                              env={"LABWALL_PROFILE_OUT": str(out)})
        assert server.proc is not None
        pid = server.proc.pid
        try:
            with launched_browser() as browser:
                page = browser.new_context(viewport=FULL_HD).new_page()
                page.goto(server.url + "/")
                wait_live(page)
                page.wait_for_timeout(SETTLE_S * 1000)
                os.kill(pid, signal.SIGUSR1)
                t0, started = thread_times(pid), time.monotonic()
                cpu0 = psutil.Process(pid).cpu_times()
                page.wait_for_timeout(seconds * 1000)
                t1, elapsed = thread_times(pid), time.monotonic() - started
                cpu1 = psutil.Process(pid).cpu_times()
                os.kill(pid, signal.SIGUSR1)
                deadline = time.monotonic() + 20
                while not Path(f"{out}.threads.json").exists() and time.monotonic() < deadline:
                    page.wait_for_timeout(200)
        finally:
            server.stop()
        names = {int(k): v for k, v in json.loads(Path(f"{out}.threads.json").read_text()).items()}
        total = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
        print(f"whole server: {100 * total / elapsed:.2f} % of one core over {elapsed:.0f} s "
              f"(cProfile on the event loop's thread inflates that thread)")
        by_name: defaultdict[str, float] = defaultdict(float)
        for tid, t in t1.items():
            by_name[names.get(tid, "(unnamed native thread)")] += t - t0.get(tid, 0.0)
        for name, cpu in sorted(by_name.items(), key=lambda kv: -kv[1]):
            if cpu > 0:
                print(f"  thread {name:<40} {100 * cpu / elapsed:6.2f} %")
        stats = pstats.Stats(str(out))
        own: defaultdict[str, float] = defaultdict(float)
        rows = []
        for (filename, line, fn), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            if fn in ("select", "poll", "epoll.poll") or ("select" in fn and "selectors" in filename):
                continue  # the event loop waiting
            own[group(filename)] += tottime
            where = "/".join(filename.rsplit("/", 2)[-2:])
            rows.append((cumtime, calls, f"{fn} {where}:{line}"))
        loop = sum(own.values())
        print(f"event loop thread under cProfile: {100 * loop / elapsed:.2f} % of one core, own time by package:")
        for name, t in sorted(own.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<28} {1000 * t / elapsed:7.2f} ms/s")
        print("largest cumulative times (ms/s, calls/s):")
        for cum, calls, name in sorted(rows, reverse=True)[:40]:
            print(f"  {1000 * cum / elapsed:8.2f} {calls / elapsed:8.1f}  {name}")


def gpu_collector_cpu(nvml: SimulatedNvml, seconds: float) -> float:
    """The GPU collector's CPU at 1 s over `seconds` (thread CPU time, this process), % of one core."""
    config = Config.model_validate({"gpu": {"backend": "simulated", "simulated_count": GPUS}})
    store = Store(config.host_label, window_s=config.history.window_s)
    gpu = build_gpu_collector(config.gpu, CollectorContext(store), NvmlBackend(nvml, name="bench"))
    assert gpu is not None
    gpu.processes.resolver = nvml.process_info
    thread = CollectorThread(gpu)
    thread.start()
    tid = next(t.native_id for t in threading.enumerate() if t.name == "collector-gpu")
    time.sleep(1.5)  # first reading, discovery
    me = psutil.Process()
    t0, started = {t.id: t.user_time + t.system_time for t in me.threads()}, time.monotonic()
    time.sleep(seconds)  # the benchmark's measuring window
    t1, elapsed = {t.id: t.user_time + t.system_time for t in me.threads()}, time.monotonic() - started
    thread.stop()
    thread.join(5)
    return 100 * (t1.get(tid, 0.0) - t0.get(tid, 0.0)) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--collector-only", action="store_true", help="only part 2 (no server, no browser)")
    parser.add_argument("--quick", action="store_true", help="5 s windows (a smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.seconds = 5.0
    print(f"server_profile: {args.seconds:g} s windows; load average "
          f"{' '.join(f'{v:.2f}' for v in psutil.getloadavg())}")
    if not args.collector_only:
        whole_server(args.seconds)
    sim = gpu_collector_cpu(SimulatedNvml(GPUS), args.seconds)
    fake = gpu_collector_cpu(FakeNvml(GPUS), args.seconds)
    print(f"GPU collector thread alone at 1 s, {GPUS} GPUs: simulated backend {sim:.2f} % of one core, "
          f"constant NVML double {fake:.2f} %; the simulation model's share {sim - fake:.2f} % "
          f"(what a real NVML backend replaces with its driver calls)")


if __name__ == "__main__":
    main()
