"""Run-join cost per tick: GPUs x processes of REAL processes, reported on simulated GPUs.

Starts gpus x per_gpu real sleeping processes (default 8 x 4 = 32). They join their runs in turn by
an open file, their working directory, an --output_dir argument, a bash launcher script in the run
directory (the GPU process is the script's child), or not at all; each also holds `--fds` other
files open, as a trainer holds its dataset shards. The registry knows `--runs` other runs. The
simulated NVML backend reports their real pids; only the join's collect() is timed:

  first tick (cold cache)      every process read from /proc (budget_s raised so all fit)
  steady state (warm cache)    ticks 2 s apart: mostly cache hits, re-reads when due
  every process re-read        the cache cleared before each tick (all pids new: the worst case)

    .venv/bin/python bench/join_bench.py [--quick] [--gpus 8] [--per-gpu 4] [--ticks 60] [--runs 200] [--fds 32]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectors.gpu import build_gpu_collector
from collectors.gpu.simulated import open_simulated
from collectors.join.collector import RunJoinCollector
from monitor.config import Config, JoinConfig
from monitor.model.run_registry import run_id_for
from monitor.model.settings import CollectorContext
from monitor.model.store import Store

KINDS = ("open_files", "cwd", "cmdline", "parent", "none")
CHILD = """
import os, sys
held = [open(os.environ["HOLD"], "a")] if os.environ.get("HOLD") else []
held += [open(os.path.join(os.environ["SHARDS"], f"shard-{i}"), "rb") for i in range(int(os.environ["FDS"]))]
print("ready", os.getpid(), flush=True)
sys.stdin.read()
"""


def start(kind: str, run: Path, scratch: Path, shards: Path, fds: int) -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "SHARDS": str(shards), "FDS": str(fds)}
    command, cwd = [sys.executable, "-c", CHILD], scratch
    if kind == "open_files":
        env["HOLD"] = str(run / "metrics.jsonl")
    elif kind == "cwd":
        cwd = run
    elif kind == "cmdline":
        command += ["--output_dir", str(run), "--lr", "3e-4"]
    elif kind == "parent":
        script = run / "launch.sh"
        script.write_text(f'"{sys.executable}" -c "$CHILD_CODE" --lr 3e-4\necho done > /dev/null\n')
        command, env["CHILD_CODE"] = ["bash", str(script)], CHILD
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    words = proc.stdout.readline().split()
    if words[:1] != ["ready"]:
        raise RuntimeError(f"a {kind} process did not start")
    return proc, int(words[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def figures(name: str, samples: list[tuple[float, float]]) -> str:
    wall, cpu = ([s[i] * 1000 for s in samples] for i in (0, 1))
    return (f"{name:<28} p50 {percentile(wall, 0.5):7.3f} ms   p95 {percentile(wall, 0.95):7.3f} ms   "
            f"max {max(wall):7.3f} ms   CPU p50 {percentile(cpu, 0.5):7.3f} ms   p95 {percentile(cpu, 0.95):7.3f} ms"
            f"   ({len(wall)} ticks)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 GPUs x 3 processes, 10 ticks (a smoke run)")
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--per-gpu", type=int, default=4)
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--runs", type=int, default=200, help="other runs the registry knows")
    parser.add_argument("--fds", type=int, default=32, help="other files each process holds open")
    args = parser.parse_args()
    if args.quick:
        args.gpus, args.per_gpu, args.ticks, args.runs, args.fds = 2, 3, 10, 20, 4
    count = args.gpus * args.per_gpu

    tmp = Path(tempfile.mkdtemp(prefix="labwall-join-bench-"))
    root, scratch, shards = tmp / "runs", tmp / "home", tmp / "shards"
    for d in (root, scratch, shards):
        d.mkdir()
    for i in range(args.fds):
        (shards / f"shard-{i}").write_bytes(b"x")
    store = Store("bench")
    for i in range(count + args.runs):
        path = root / f"team-{i % 7}" / f"run-{i:04d}"
        path.mkdir(parents=True)
        store.runs.add_run(run_id_for(str(path), path.name), path.name, str(path), str(root), "jsonl")

    procs: list[subprocess.Popen[str]] = []
    try:
        pids, kinds, expected = [], [], []
        for i in range(count):
            kind, run = KINDS[i % len(KINDS)], root / f"team-{i % 7}" / f"run-{i:04d}"
            expected.append(run_id_for(str(run), run.name))
            proc, pid = start(kind, run, scratch, shards, args.fds)
            procs.append(proc)
            pids.append(pid)
            kinds.append(kind)
        scenario = {"gpus": [
            {"name": "Simulated H100", "processes": [
                {"pid": pids[g * args.per_gpu + k], "user": "alice", "command": "python train.py",
                 "gpu_memory_bytes": 2**34} for k in range(args.per_gpu)]}
            for g in range(args.gpus)]}
        section = Config.model_validate({"gpu": {"backend": "simulated"}}).gpu
        gpu = build_gpu_collector(section, CollectorContext(store), open_simulated(section, scenario))
        assert gpu is not None
        gpu.setup()

        def tick(join: RunJoinCollector, now: float) -> tuple[float, float]:
            """(wall, CPU) seconds of one join tick; CPU time is what a busy shared host cannot inflate."""
            gpu.collect(now)
            started, cpu = time.perf_counter(), time.thread_time()
            join.collect(now)
            return time.perf_counter() - started, time.thread_time() - cpu

        t0 = time.time()
        default_join = RunJoinCollector(store, JoinConfig())
        tick(default_join, t0)
        read_in_first = default_join.health.detail["processes"] - default_join.health.detail["pending"]

        colds = []
        for _ in range(9 if not args.quick else 2):
            join = RunJoinCollector(store, JoinConfig(budget_s=10.0))
            colds.append(tick(join, t0))
        joined = store.state("gpu_runs")[1]["by_pid"]  # type: ignore[index]
        right = sum(1 for i, (p, kind) in enumerate(zip(pids, kinds, strict=True)) if kind != "none"
                    and joined[p]["run_id"] == expected[i] and joined[p]["via"] == kind)
        wrong = sum(1 for p, kind in zip(pids, kinds, strict=True) if kind == "none" and joined[p]["run_id"])
        warm = [tick(join, t0 + 2.0 * (i + 1)) for i in range(args.ticks)]
        reread = []
        for i in range(args.ticks):
            join.cache.clear()
            reread.append(tick(join, t0 + 2.0 * (args.ticks + i + 1)))

        print(f"run join, {args.gpus} GPUs x {args.per_gpu} processes = {count} real processes "
              f"({', '.join(f'{kinds.count(k)} {k}' for k in KINDS)}); {count + args.runs} runs known; "
              f"{args.fds} other open files each")
        print(f"host: {platform.python_implementation()} {platform.python_version()}, psutil {psutil.__version__}, "
              f"{os.cpu_count()} CPUs, {len(psutil.pids())} processes on the host")
        print(f"joined to the right run by the expected rule: {right}/{count - kinds.count('none')}; "
              f"processes writing no run joined anyway: {wrong}/{kinds.count('none')}")
        print(f"first tick (cold cache)      {colds[0][0] * 1000:7.3f} ms   CPU {colds[0][1] * 1000:7.3f} ms   "
              f"(median of {len(colds)} cold starts {statistics.median(c[0] for c in colds) * 1000:.3f} ms, "
              f"CPU {statistics.median(c[1] for c in colds) * 1000:.3f} ms)")
        print(f"  with the default budget_s {JoinConfig().budget_s:g}: {read_in_first}/{count} read in the first tick")
        print(figures("steady state (warm cache)", warm))
        print(figures("every process re-read", reread))
    finally:
        for proc in procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
