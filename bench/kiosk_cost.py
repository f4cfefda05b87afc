"""The kiosk browser's cost: labwall's wall (8 simulated GPUs + host + 10 live run cards) against
Glances' web UI, each in one headless Chromium at 1 s refresh, at each screen size and CPU
throttle asked for, measured in one run, one page at a time (bench/vs_glances.py's `measure` takes
every figure).

Prints, per setting, all Chromium CPU and the page's main-thread busy time for both, and the ratios
labwall/Glances (issue 17's target: both <= 0.5). A throttle of 4 is CDP
`Emulation.setCPUThrottlingRate` 4x on the page (a small kiosk PC).

Glances is measured first while labwall warms up (its 10-minute charts fill, as on a wall that has
been up a while; run cards start with 400 steps); `--baseline DIR` adds another checkout's labwall
("before"), warmed up alongside and measured the same way in the same run.

    .venv/bin/python bench/kiosk_cost.py [--duration S] [--settings 1920x1080@1,3840x2160@1,1920x1080@4]
                                         [--warmup S] [--baseline DIR] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the test harness's helpers
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from browser_support import start_server
from support import LabwallServer
from vs_glances import Subject, ensure_glances, glances_server, measure

GPUS = 8
RUNS = 10
PREFILL = 400  # steps already in each run: a run card's chart is full (400 points) from the start
TARGET = 0.5
DEFAULT_SETTINGS = "1920x1080@1,3840x2160@1,1920x1080@4"


def viewport(text: str) -> dict[str, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"viewport must be WIDTHxHEIGHT, like 1920x1080 (got {text!r})") from None
    return {"width": w, "height": h}


def settings(text: str) -> list[tuple[dict[str, int], float]]:
    """"1920x1080@1,3840x2160@4" -> [(viewport, throttle), ...]."""
    out = []
    for item in text.split(","):
        size, _, rate = item.partition("@")
        try:
            out.append((viewport(size), float(rate or 1)))
        except ValueError:
            raise argparse.ArgumentTypeError(f"a setting is WIDTHxHEIGHT@THROTTLE, like 1920x1080@4 (got {item!r})") \
                from None
    return out


class RunFeeder(threading.Thread):
    """`count` live runs (`metrics.jsonl`), each with PREFILL steps already written (full run cards
    from the start), then one step a second each, written by this process (not the server's CPU)."""

    def __init__(self, root: Path, count: int) -> None:
        super().__init__(name="run-feeder", daemon=True)
        self.files = [root / f"user{i}" / f"run{i}" / "metrics.jsonl" for i in range(count)]
        self.step = PREFILL
        self.done = threading.Event()
        for i, path in enumerate(self.files):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(self.line(i, s) for s in range(1, PREFILL + 1)))

    @staticmethod
    def line(i: int, step: int) -> str:
        loss = 3.0 / (1 + step / 200) + 0.1 * math.sin(step / 7 + i)
        return json.dumps({"step": step, "loss": round(loss, 4)}) + "\n"

    def run(self) -> None:
        while not self.done.wait(1.0):
            self.step += 1
            for i, path in enumerate(self.files):
                with path.open("a") as f:
                    f.write(self.line(i, self.step))


@contextmanager
def kiosk_lab(gpus: int = GPUS, runs: int = RUNS, tree: Path | None = None) -> Iterator[LabwallServer]:
    """labwall (from `tree`'s main.py, else this checkout's) with `gpus` simulated GPUs, the real host
    and `runs` live runs."""
    with tempfile.TemporaryDirectory(prefix="labwall-kiosk-") as tmp:
        root = Path(tmp) / "runs"
        feeder = RunFeeder(root, runs)
        feeder.start()
        gpu = {"backend": "simulated", "simulated_count": gpus, "interval_s": 1.0} if gpus else {"enabled": False}
        config = {"gpu": gpu, "host": {"interval_s": 1.0}, "wall": {"flush_interval_s": 1.0},
                  "runs": {"roots": [str(root)] if runs else []}}
        server = start_server(Path(tmp), config, script=tree / "main.py" if tree else None)
        try:
            yield server
        finally:
            server.stop()
            feeder.done.set()


def wait_kiosk(page: Any, runs: int = RUNS) -> None:
    """Until every chart has drawn, the clock moves and `runs` run cards show a chart."""
    from browser_support import wait_live
    wait_live(page, timeout=60)
    page.wait_for_function("(n) => document.querySelectorAll('.wall .run .js-plotly-plot').length >= n",
                           arg=runs, timeout=60_000)


def kiosk_subject(server: LabwallServer, name: str) -> Subject:
    assert server.proc is not None
    return Subject(name, psutil.Process(server.proc.pid), server.url + "/",
                   wait_kiosk, lambda item: item.startswith('42["update"'))


def label(size: dict[str, int], rate: float) -> str:
    return f"{size['width']}x{size['height']}, CPU {rate:g}x"


def print_results(names: list[str], results: list[list[dict[str, Any]]], setups: list) -> None:
    print(f"{'setting':<24}{'page':>22}{'all Chromium %':>16}{'renderers %':>13}{'main thread %':>15}"
          f"{'server %':>10}{'other load %':>14}")
    for k, (size, rate) in enumerate(setups):
        for name, rows in zip(names, results, strict=True):
            r = rows[k]
            print(f"{label(size, rate):<24}{name:>22}{r['browser_cpu_pct']:>16.2f}{r['renderer_cpu_pct']:>13.2f}"
                  f"{r['main_thread_pct']:>15.2f}{r['server_cpu_pct']:>10.2f}{r['other_load_pct']:>14.1f}")
    gl = results[-1]
    for name, rows in zip(names[:-1], results[:-1], strict=True):
        for k, (size, rate) in enumerate(setups):
            a, b = rows[k], gl[k]
            print(f"ratio {name}/glances at {label(size, rate)}: all Chromium CPU "
                  f"{a['browser_cpu_pct'] / b['browser_cpu_pct']:.3f}, main thread busy "
                  f"{a['main_thread_pct'] / b['main_thread_pct']:.3f} (target <= {TARGET}); "
                  f"pages live at the end: {a['alive']} / {b['alive']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="measuring window per page and setting, s")
    parser.add_argument("--settings", type=settings, default=settings(DEFAULT_SETTINGS),
                        help=f"WIDTHxHEIGHT@THROTTLE,... (default {DEFAULT_SETTINGS})")
    parser.add_argument("--warmup", type=float, default=620.0,
                        help="labwall runs this long before its first window, so that its 10-minute charts are "
                             "full as on a wall that has been up for a while (default 620 s)")
    parser.add_argument("--quick", action="store_true", help="one setting, 8 s windows, no warm-up (a smoke run)")
    parser.add_argument("--baseline", type=Path, help="another labwall checkout (its main.py) measured the same way "
                                                      "in the same run, as 'before'")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup, args.settings = 8.0, 0.0, args.settings[:1]
    if args.duration < 5:
        raise SystemExit(f"--duration must be at least 5 s (got {args.duration:g})")
    if args.baseline and not (args.baseline / "main.py").is_file():
        raise SystemExit(f"--baseline {args.baseline}: no main.py there")
    glances = ensure_glances()
    print(f"kiosk_cost: {args.duration:g} s window per page and setting, labwall warmed up {args.warmup:g} s; "
          f"{platform.node()}, {psutil.cpu_count()} CPUs, load average "
          f"{' '.join(f'{v:.2f}' for v in psutil.getloadavg())}")
    trees = ([("before", args.baseline)] if args.baseline else []) + [("labwall", None)]
    names = [f"{name} {GPUS} GPU {RUNS} runs" for name, _ in trees] + ["glances"]
    with ExitStack() as stack:
        labs = [stack.enter_context(kiosk_lab(tree=tree)) for _, tree in trees]  # warming up meanwhile
        started = time.monotonic()
        with glances_server(glances) as subject:
            gl = [measure(subject, args.duration, size, rate) for size, rate in args.settings]
        time.sleep(max(0.0, args.warmup - (time.monotonic() - started)))
        results = [[measure(kiosk_subject(lab, name), args.duration, size, rate) for size, rate in args.settings]
                   for lab, name in zip(labs, names, strict=False)]
    print_results(names, [*results, gl], args.settings)
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in psutil.getloadavg())}")


if __name__ == "__main__":
    main()
