"""Where a backfill's time goes: the runs collector loads a root of JSONL runs in this process.

    .venv/bin/python bench/profile_backfill.py [--runs 200] [--lines 10000] [--dir DIR] [--profile OUT.prof]

Writes the same corpus as bench/run_backfill.py (reused when already there), then ticks a real
RunsCollector on a Store (no thread, no server, no file events) until every run's step is the last
line's, and prints the wall and CPU time. With --profile, cProfile runs around the loading and the
top functions by own time are printed (read OUT.prof with `python -m pstats`).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from run_backfill import write_runs  # noqa: E402

from collectors.runs import RunsCollector  # noqa: E402
from monitor.config import RunsConfig  # noqa: E402
from monitor.model.store import Store  # noqa: E402


def load(root: Path, runs: int, lines: int) -> tuple[float, float, int]:
    store = Store("bench")
    collector = RunsCollector(store, RunsConfig(roots=[root], use_events=False, writer_check_s=0, rescan_s=3600))
    wall, cpu = time.perf_counter(), time.process_time()
    ticks = 0
    while True:
        collector.collect(time.time())
        ticks += 1
        if collector.initial_scan_done and not collector.backlog:
            body = store.runs.summaries()
            if len(body) == runs and all(r["step"] == lines - 1 for r in body):
                break
    return time.perf_counter() - wall, time.process_time() - cpu, ticks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--lines", type=int, default=10000)
    parser.add_argument("--dir", type=Path, help="where the runs are written (kept and reused)")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the loading here")
    args = parser.parse_args()
    root = (args.dir or Path(tempfile.mkdtemp(prefix="labwall-profile-"))) / "runs"
    root.mkdir(parents=True, exist_ok=True)
    write_runs(root, args.runs, args.lines)
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    wall, cpu, ticks = load(root, args.runs, args.lines)
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
        pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(25)
    points = args.runs * args.lines * 2
    print(f"profile_backfill: {args.runs} runs x {args.lines} lines loaded in {wall:.2f} s wall, {cpu:.2f} s CPU, "
          f"{ticks} ticks ({points / wall / 1e6:.2f} M points/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
