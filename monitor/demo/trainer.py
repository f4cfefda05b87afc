"""A small fake trainer for demo mode: writes real run files so the wall shows the real watch path.

    python -m monitor.demo.trainer DIR [--steps 120] [--interval 1.0] [--keep 3]

Each run is a directory DIR/demo-<time>-<n> (or DIR/NAME) in one of the layouts of
monitor/demo/layouts.py: by default `metrics.jsonl` (a config line, a start event with
total_steps, then one line a step: step, loss, lr, time; then `{"event": "end"}`) and a text log
`train.log` (`step=… loss=… lr=…`). After a run ends the next one starts (unless --once); runs
beyond the newest `--keep` are deleted (so the wall also shows a deleted run greyed). `--fate
stall|crash --fate-after S` makes the run stop writing (alive, files open) or crash with a traceback
and exit 1 after S seconds. The trainer exits when its parent exits.
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

from monitor.demo.layouts import LAYOUTS, RunWriter

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BASE_LR = 3e-4


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


def _metrics(step: int, steps: int, rng: random.Random) -> dict[str, float]:
    progress = step / steps
    lr = BASE_LR * 0.5 * (1 + math.cos(math.pi * progress))
    loss = 2.5 * math.exp(-3 * progress) + 0.3 + rng.gauss(0, 0.05)
    return {"loss": round(loss, 5), "lr": float(f"{lr:.4g}")}


def _one_run(writer: RunWriter, steps: int, interval_s: float, parent: int, rng: random.Random,
             fate: str = "finish", fate_after_s: float = math.inf) -> bool:
    """Write one run to its fate; False when the parent went away (stop)."""
    writer.start()
    started = time.monotonic()
    for step in range(1, steps + 1):
        if os.getppid() != parent:
            writer.close()
            return False
        if fate != "finish" and time.monotonic() - started >= fate_after_s:
            if fate == "crash":
                writer.crash()
                sys.exit(1)  # a crashed trainer exits: its GPU is free again
            while os.getppid() == parent:  # stalled: alive, files open, holding its GPU, writing nothing
                time.sleep(0.5)
            return False
        writer.log(step, _metrics(step, steps, rng))
        time.sleep(interval_s)
    writer.end()
    return True


def run(directory: Path, steps: int, interval_s: float, keep: int, layout: str = "jsonl", name: str = "",
        fate: str = "finish", fate_after_s: float = math.inf, repeat: bool = True,
        params: dict[str, object] | None = None) -> None:
    parent = os.getppid()
    rng = random.Random()
    directory.mkdir(parents=True, exist_ok=True)
    n = 0
    while True:
        n += 1
        if name:
            run_dir = directory / (name if n == 1 else f"{name}-{n}")
        else:
            run_dir = directory / f"demo-{time.strftime('%Y%m%d-%H%M%S')}-{n}"
        writer = LAYOUTS[layout](run_dir, steps, {"lr": BASE_LR, "total_steps": steps, **(params or {})})
        if not _one_run(writer, steps, interval_s, parent, rng, fate, fate_after_s) or not repeat:
            return
        pattern = f"{name}*" if name else "demo-*"
        runs = sorted((p for p in directory.glob(pattern) if p.is_dir()), key=lambda p: p.stat().st_mtime)
        for old in runs[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitor.demo.trainer", description=__doc__.split("\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds per step")
    parser.add_argument("--keep", type=int, default=3, help="finished runs kept on disk")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="jsonl")
    parser.add_argument("--name", default="", help="run directory below DIR (default: demo-<time>-<n>)")
    parser.add_argument("--fate", choices=["finish", "stall", "crash"], default="finish")
    parser.add_argument("--fate-after", type=float, default=math.inf, help="seconds until it stalls or crashes")
    parser.add_argument("--once", action="store_true", help="exit after one finished run instead of starting the next")
    parser.add_argument("--params", default="{}", help="hyperparameters (JSON object) written with the run")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run(args.directory, args.steps, args.interval, args.keep, args.layout, args.name, args.fate,
        args.fate_after, not args.once, json.loads(args.params))
    return 0


if __name__ == "__main__":
    sys.exit(main())
