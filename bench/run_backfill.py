"""Backfill: a real labwall server starts on a root that already holds many runs of one layout.

    .venv/bin/python bench/run_backfill.py [--runs 1000] [--lines 10000] [--quick] [--cpus 2] [--dir DIR]
                                           [--layout jsonl|sb3|dvclive|mlflow|ray_tune|wandb]

Writes RUNS run directories of LINES records each (steps 0..LINES-1, two metrics: loss and lr) in the
layout's own files (W&B: its summary holds only the latest values, so 2 points a run; LINES lines of
output.log),
starts `main.py` on them (pinned to --cpus cores when the machine has more) and prints: the time
until every run is loaded (all of its lines in /api/runs), the server's peak RSS while loading,
and how the server answered meanwhile (/healthz latency). Targets (issue 5): <= 60 s on 2 cores,
<= 500 MB peak RSS, the wall responsive meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support import LabwallServer  # noqa: E402

LAYOUTS = ("jsonl", "sb3", "dvclive", "mlflow", "ray_tune", "wandb")


def _series(r: int, lines: int) -> tuple[list[float], list[float]]:
    loss = [round(2.5 / (1 + i / 500) + (r % 7) * 0.01, 6) for i in range(lines)]
    lr = [float(f"{3e-4 * (1 - i / lines):.6g}") for i in range(lines)]
    return loss, lr


def write_run(run: Path, layout: str, r: int, lines: int, start: float) -> None:
    """One run of `layout` with LINES records (steps 0..LINES-1) of loss and lr."""
    loss, lr = _series(r, lines)
    steps = range(lines)
    if layout == "jsonl":
        run.mkdir(parents=True, exist_ok=True)
        (run / "metrics.jsonl").write_text("".join(
            f'{{"step": {i}, "time": {start + i:.3f}, "loss": {loss[i]}, "lr": {lr[i]}}}\n' for i in steps))
    elif layout == "sb3":
        run.mkdir(parents=True, exist_ok=True)
        (run / "progress.csv").write_text("time/total_timesteps,train/loss,train/learning_rate\n" + "".join(
            f"{i},{loss[i]},{lr[i]}\n" for i in steps))
    elif layout == "dvclive":
        metrics = run / "dvclive" / "plots" / "metrics" / "train"
        metrics.mkdir(parents=True, exist_ok=True)
        for name, values in (("loss", loss), ("lr", lr)):
            (metrics / f"{name}.tsv").write_text(f"timestamp\tstep\t{name}\n" + "".join(
                f"{int((start + i) * 1000)}\t{i}\t{values[i]}\n" for i in steps))
        (run / "dvclive" / "params.yaml").write_text("lr: 0.0003\n")
    elif layout == "mlflow":
        run_dir = run.parent / "mlruns" / "1" / f"{r:032x}"  # runs.max_depth 4: group/mlruns/1/<id>
        (run_dir / "metrics").mkdir(parents=True, exist_ok=True)
        (run_dir / "meta.yaml").write_text(f"run_id: {r:032x}\nstatus: 3\nexperiment_id: '1'\n")
        for name, values in (("loss", loss), ("lr", lr)):
            (run_dir / "metrics" / name).write_text("".join(
                f"{int((start + i) * 1000)} {values[i]} {i}\n" for i in steps))
    elif layout == "ray_tune":
        run.mkdir(parents=True, exist_ok=True)
        (run / "params.json").write_text('{"lr": 0.0003}')
        (run / "result.json").write_text("".join(json.dumps(
            {"training_iteration": i, "timestamp": int(start + i), "loss": loss[i], "lr": lr[i], "done": False,
             "config": {"lr": 0.0003}}) + "\n" for i in steps))
    elif layout == "wandb":
        files = run / "wandb" / "run-20250101_000000-abc123" / "files"
        files.mkdir(parents=True, exist_ok=True)
        (files / "wandb-summary.json").write_text(json.dumps(
            {"_step": lines - 1, "_timestamp": start + lines, "loss": loss[-1], "lr": lr[-1]}))
        (files / "config.yaml").write_text("lr:\n  value: 0.0003\n")
        (files / "output.log").write_text("".join(f"epoch {i} done\n" for i in steps))


def write_runs(root: Path, runs: int, lines: int, layout: str = "jsonl") -> int:
    """RUNS directories of LINES records each; returns the bytes written. Reused when already there."""
    marker = root / f".complete-{layout}-{runs}x{lines}"
    if not marker.exists():
        start = time.time() - lines
        for r in range(runs):
            write_run(root / f"group{r % 20:02d}" / f"run{r:04d}", layout, r, lines, start)
        marker.touch()
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return
            self.stop.wait(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=10000)
    parser.add_argument("--quick", action="store_true", help="40 runs x 2,000 lines (a smoke run)")
    parser.add_argument("--cpus", type=int, default=2, help="cores the server may use (pinned when more exist)")
    parser.add_argument("--dir", type=Path, help="where to write the runs (kept and reused); default: a temp dir")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--layout", choices=LAYOUTS, default="jsonl", help="the run layout written")
    args = parser.parse_args()
    runs, lines = (40, 2000) if args.quick else (args.runs, args.lines)
    work = args.dir or Path(tempfile.mkdtemp(prefix="labwall-backfill-"))
    root = work / "runs"
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    size = write_runs(root, runs, lines, args.layout)
    points = runs * (2 if args.layout == "wandb" else 2 * lines)
    print(f"run_backfill: {args.layout}, {runs} runs x {lines} lines = {runs * lines:,} lines, "
          f"{size / 1e6:.0f} MB on disk "
          f"(written in {time.time() - t0:.1f} s)")
    server = LabwallServer(work, {"runs": {"roots": [str(root)]}, "gpu": {"backend": "simulated"}})
    cpus = sorted(os.sched_getaffinity(0))
    try:
        started = time.perf_counter()
        server.start(wait=False)
        assert server.proc is not None
        pinned = len(cpus) > args.cpus
        if pinned:
            os.sched_setaffinity(server.proc.pid, set(cpus[: args.cpus]))
        sampler = RssSampler(server.proc.pid)
        sampler.start()
        server.wait_ready(timeout=60)
        ready = time.perf_counter() - started
        client = httpx.Client(base_url=server.url, timeout=30)
        health_ms: list[float] = []
        loaded = None
        while time.perf_counter() - started < args.timeout:
            t = time.perf_counter()
            health = client.get("/healthz").json()
            health_ms.append((time.perf_counter() - t) * 1000)
            detail = health["collectors"].get("runs", {})
            if detail.get("initial_scan_done") and detail.get("runs") == runs and detail.get("backlog_files") == 0:
                body = client.get("/api/runs").json()
                if len(body) == runs and all(r["step"] == lines - 1 for r in body):
                    loaded = time.perf_counter() - started
                    break
            time.sleep(0.25)
        sampler.stop.set()
        sampler.join()
        t = time.perf_counter()
        client.get("/api/runs")
        list_ms = (time.perf_counter() - t) * 1000
        process = psutil.Process(server.proc.pid)
        rss_after = process.memory_info().rss
        idle_s = 3.0 if args.quick else 20.0  # watching every run afterwards (events, rescans, statuses)
        before = process.cpu_times()
        time.sleep(idle_s)
        after = process.cpu_times()
        idle_cpu = 100 * ((after.user - before.user) + (after.system - before.system)) / idle_s
    finally:
        server.stop()
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    cores = f"pinned to {args.cpus} of {len(cpus)} cores" if pinned else f"{len(cpus)} cores"
    print(f"server: {cores}; up (HTTP ready) after {ready:.1f} s")
    if loaded is None:
        print(f"NOT LOADED within {args.timeout:.0f} s")
        return 1
    health_ms.sort()
    p95 = health_ms[max(0, round(0.95 * len(health_ms)) - 1)]
    print(f"all {runs} runs loaded ({points:,} points) in {loaded:.1f} s from process start "
          f"(target <= 60 s on 2 cores): {points / loaded:,.0f} points/s")
    print(f"peak RSS while loading: {sampler.peak / 1e6:.0f} MB; after: {rss_after / 1e6:.0f} MB (target <= 500 MB)")
    print(f"server CPU afterwards, watching {runs} idle runs ({idle_s:.0f} s): {idle_cpu:.1f} % of one core")
    print(f"/healthz while loading: {len(health_ms)} requests, p50 {statistics.median(health_ms):.0f} ms, "
          f"p95 {p95:.0f} ms, max {health_ms[-1]:.0f} ms; GET /api/runs ({runs} runs) after: {list_ms:.0f} ms")
    print(json.dumps({"layout": args.layout, "runs": runs, "lines": lines, "loaded_s": round(loaded, 2),
                      "points_per_s": round(points / loaded),
                      "peak_rss_mb": round(sampler.peak / 1e6), "healthz_p95_ms": round(p95),
                      "idle_cpu_percent": round(idle_cpu, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
