"""labwall vs TensorBoard on the same event files: time until every run's last point is served.

    .venv/bin/python bench/vs_tensorboard.py [--runs 200] [--scalars 5000] [--dir DIR] [--load-fast true|false|both]

Writes RUNS run directories, each one event file of SCALARS `loss` scalars (steps 0..SCALARS-1) by
TensorBoard's own `EventFileWriter` (what `SummaryWriter.add_scalar` writes: a `simple_value` per
event), then, one after the other on the same files:
- labwall (`main.py`, the tensorboard format): from process start until `/api/runs` shows every
  run at the last step; then every run's `/api/runs/{id}/metrics/loss` is fetched and its points
  counted (labwall keeps every point);
- `tensorboard --logdir ROOT --host 127.0.0.1 --load_fast=true` (its Rust data server) and/or
  `--load_fast=false`: from process start until `/data/plugin/scalars/scalars?run=R&tag=loss` of
  every run ends at the last step (TensorBoard keeps 1,000 points per tag by default: counted too).
Both are pinned to --cpus cores when the machine has more. Prints each time and the ratio
labwall / TensorBoard (target <= 1.0, issue 17).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support import LabwallServer, free_port  # noqa: E402

TAG = "loss"


def write_runs(root: Path, runs: int, scalars: int) -> int:
    """RUNS directories of one event file each; returns the bytes written. Reused when already there."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    marker = root / f".complete-{runs}x{scalars}"
    if not marker.exists():
        start = time.time() - scalars
        for r in range(runs):
            writer = EventFileWriter(str(root / f"run{r:03d}"), max_queue_size=scalars, flush_secs=3600)
            for i in range(scalars):
                value = 2.5 / (1 + i / 500) + (r % 7) * 0.01
                summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=TAG, simple_value=value)])
                writer.add_event(event_pb2.Event(summary=summary, step=i, wall_time=start + i))
            writer.close()
        marker.touch()
    return sum(p.stat().st_size for p in root.rglob("events.out.tfevents.*"))


def pin(pid: int, cpus: int) -> str:
    available = sorted(os.sched_getaffinity(0))
    if len(available) > cpus:
        os.sched_setaffinity(pid, set(available[:cpus]))
        return f"pinned to {cpus} of {len(available)} cores"
    return f"{len(available)} cores"


def wait(check: Callable[[], bool], started: float, timeout: float) -> float | None:
    while time.perf_counter() - started < timeout:
        try:
            if check():
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return None


def labwall(work: Path, root: Path, runs: int, scalars: int, cpus: int, timeout: float) -> dict[str, object]:
    server = LabwallServer(work, {"runs": {"roots": [str(root)]}, "gpu": {"backend": "simulated"}})
    started = time.perf_counter()
    server.start(wait=False)
    assert server.proc is not None
    cores = pin(server.proc.pid, cpus)
    client = httpx.Client(base_url=server.url, timeout=30)

    def done() -> bool:
        body = client.get("/api/runs").json()
        return len(body) == runs and all(r["step"] == scalars - 1 for r in body)

    try:
        loaded = wait(done, started, timeout)
        points = [len(client.get(f"/api/runs/{r['id']}/metrics/{TAG}").json()["points"])
                  for r in client.get("/api/runs").json()] if loaded else []
    finally:
        server.stop()
    return {"loaded_s": loaded, "points_per_run": sorted(set(points)), "cores": cores}


def tensorboard(work: Path, root: Path, runs: int, scalars: int, cpus: int, timeout: float,
                load_fast: str, extra: list[str]) -> dict[str, object]:
    port = free_port()
    log = (work / f"tensorboard-{load_fast}.log").open("wb")
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(root), "--host", "127.0.0.1",
         "--port", str(port), f"--load_fast={load_fast}", *extra],
        stdout=log, stderr=subprocess.STDOUT,
    )
    cores = pin(proc.pid, cpus)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    pending = {f"run{r:03d}" for r in range(runs)}
    points: dict[str, int] = {}

    def done() -> bool:
        for run in sorted(pending):
            response = client.get("/data/plugin/scalars/scalars", params={"run": run, "tag": TAG})
            if response.status_code != 200:
                return False  # not loaded yet: check again from this run on the next round
            series = response.json()
            if not series or series[-1][1] != scalars - 1:
                return False
            points[run] = len(series)
            pending.discard(run)
        return not pending

    try:
        loaded = wait(done, started, timeout)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
    return {"loaded_s": loaded, "points_per_run": sorted(set(points.values())), "cores": cores}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--scalars", type=int, default=5000)
    parser.add_argument("--load-fast", choices=["true", "false", "both"], default="true")
    parser.add_argument("--cpus", type=int, default=2, help="cores each server may use (pinned when more exist)")
    parser.add_argument("--dir", type=Path, help="where to write the runs (kept and reused); default: a temp dir")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--reload-interval", type=float,
                        help="TensorBoard's --reload_interval (default: TensorBoard's own, 5 s)")
    args = parser.parse_args()
    extra = [f"--reload_interval={args.reload_interval:g}"] if args.reload_interval is not None else []
    work = args.dir or Path(tempfile.mkdtemp(prefix="labwall-vs-tb-"))
    root = work / "runs"
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    size = write_runs(root, args.runs, args.scalars)
    print(f"vs_tensorboard: {args.runs} runs x {args.scalars} scalars = {args.runs * args.scalars:,} points, "
          f"{size / 1e6:.0f} MB of event files (written in {time.time() - t0:.1f} s)")
    try:
        ours = labwall(work, root, args.runs, args.scalars, args.cpus, args.timeout)
        print(f"labwall: every run's last point served after {ours['loaded_s']} s ({ours['cores']}); "
              f"points kept per run: {ours['points_per_run']}")
        results: dict[str, object] = {"labwall": ours}
        for load_fast in (["true", "false"] if args.load_fast == "both" else [args.load_fast]):
            theirs = tensorboard(work, root, args.runs, args.scalars, args.cpus, args.timeout, load_fast, extra)
            results[f"tensorboard_load_fast_{load_fast}"] = theirs
            ratio = (ours["loaded_s"] / theirs["loaded_s"]  # type: ignore[operator]
                     if ours["loaded_s"] and theirs["loaded_s"] else None)
            flags = " ".join([f"--load_fast={load_fast}", *extra])
            print(f"tensorboard {flags}: every run's last point served after {theirs['loaded_s']} s "
                  f"({theirs['cores']}); points kept per run: {theirs['points_per_run']}")
            print(f"ratio labwall / tensorboard --load_fast={load_fast}: "
                  f"{f'{ratio:.2f}' if ratio is not None else 'n/a'} (target <= 1.0)")
            results[f"ratio_load_fast_{load_fast}"] = round(ratio, 3) if ratio is not None else None
        print(json.dumps(results))
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
