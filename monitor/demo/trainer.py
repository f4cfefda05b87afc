"""A small fake trainer for demo mode: writes real run files so the wall shows the real watch path.

    python -m monitor.demo.trainer DIR [--steps 120] [--interval 1.0] [--keep 3]

Each run is a directory DIR/demo-<time>-<n> with `metrics.jsonl` (a start event with total_steps,
then one line a step: step, loss, lr, time; then `{"event": "end"}`) and a text log `train.log`
(`step=… loss=… lr=…`). After a run ends the next one starts; runs beyond the newest `--keep` are
deleted (so the wall also shows a deleted run greyed). The trainer exits when its parent exits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def make_demo_root() -> Path:
    """A fresh temporary directory to use as the run root in demo mode."""
    return Path(tempfile.mkdtemp(prefix="labwall-demo-runs-"))


def start_demo_trainer(
    directory: Path, steps: int = 120, interval_s: float = 1.0, keep: int = 3
) -> subprocess.Popen[bytes]:
    """Start the demo trainer writing into `directory`; stop it with stop_demo_trainer()."""
    directory.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [sys.executable, "-m", "monitor.demo.trainer", str(directory), "--steps", str(steps),
         "--interval", str(interval_s), "--keep", str(keep)],
        cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def stop_demo_trainer(process: subprocess.Popen[bytes], timeout_s: float = 3.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout_s)


def _one_run(run_dir: Path, steps: int, interval_s: float, parent: int, rng: random.Random) -> bool:
    """Write one run; False when the parent went away (stop)."""
    run_dir.mkdir(parents=True)
    base_lr = 3e-4
    with (
        (run_dir / "metrics.jsonl").open("a", buffering=1) as metrics,
        (run_dir / "train.log").open("a", buffering=1) as log,
    ):
        metrics.write(json.dumps({"event": "start", "total_steps": steps, "time": round(time.time(), 3)}) + "\n")
        log.write(f"demo trainer: {steps} steps, lr {base_lr}\n")
        for step in range(1, steps + 1):
            if os.getppid() != parent:
                return False
            progress = step / steps
            lr = base_lr * 0.5 * (1 + math.cos(math.pi * progress))
            loss = 2.5 * math.exp(-3 * progress) + 0.3 + rng.gauss(0, 0.05)
            metrics.write(json.dumps({"step": step, "loss": round(loss, 5), "lr": float(f"{lr:.4g}"),
                                      "time": round(time.time(), 3)}) + "\n")
            log.write(f"step={step} loss={loss:.4f} lr={lr:.3e}\n")
            time.sleep(interval_s)
        metrics.write(json.dumps({"event": "end", "step": steps, "time": round(time.time(), 3)}) + "\n")
        log.write("training finished\n")
    return True


def run(directory: Path, steps: int, interval_s: float, keep: int) -> None:
    parent = os.getppid()
    rng = random.Random()
    directory.mkdir(parents=True, exist_ok=True)
    n = 0
    while True:
        n += 1
        run_dir = directory / f"demo-{time.strftime('%Y%m%d-%H%M%S')}-{n}"
        if not _one_run(run_dir, steps, interval_s, parent, rng):
            return
        runs = sorted((p for p in directory.glob("demo-*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
        for old in runs[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitor.demo.trainer", description=__doc__.split("\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds per step")
    parser.add_argument("--keep", type=int, default=3, help="finished runs kept on disk")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run(args.directory, args.steps, args.interval, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
