"""Each wall benchmark runs (`--quick`) and prints its figures. No timing is asserted here: the
figures are recorded in docs/BENCHMARKS.md from full runs. bench/vs_glances.py installs Glances
from PyPI into .bench/glances-venv the first time (CI has PyPI)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from support import ROOT

pytestmark = pytest.mark.browser

EXPECTED = {
    "wall_bytes.py": ["history    60 points:", "history  3600 points:", "ratio bytes/tick 3600 vs 60 points:",
                      "bytes/tick, 8 GPUs + host:"],
    "kiosk_heap.py": ["JS heap minute", "renderer private memory (USS) minute", "DOM nodes minute",
                      "page still live"],
    "viewers.py": ["0 viewers", "1 light viewer", "5 light viewers", "5 light + 1 Chromium",
                   "server CPU per extra viewer:", "worst tick over all steps:"],
    "multihost.py": ["wall server CPU:", "wall server RSS:", "worst tick delay", "Prometheus queries per refresh:"],
    "usage_bench.py": ["/api/usage?by=user: p50", "accountant CPU per tick, 8 GPUs:"],
}
# What the side-by-side and soak benchmarks must print; the lines with values assert behaviour
# (both pages stayed live, no viewer failed, every NiceGUI client was dropped), not timing.
EXPECTED_LONG = {
    "vs_glances.py": ["server CPU, % of one core", "server RSS peak, MB", "browser CPU (all Chromium), %",
                      "page main thread busy, %", "bytes per refresh", "ratio server CPU labwall/glances:",
                      "ratio browser CPU labwall/glances:", "ratio bytes per refresh labwall/glances:",
                      "pages still live at the end: labwall True, glances True"],
    "kiosk_cost.py": ["ratio labwall 8 GPU 10 runs/glances at 1920x1080, CPU 1x: all Chromium CPU",
                      "pages live at the end: True / True"],
    "server_profile.py": ["whole server:", "thread collector-gpu", "event loop thread under cProfile:",
                          "GPU collector thread alone at 1 s, 8 GPUs: simulated backend"],
    "soak.py": ["after block  5/5 (   50 cycles,", "cycles done: 50 in", " s, 0 failed;", "RSS growth after warm-up:",
                "threads after warm-up -> end, besides the worker pool:", "open fds:",
                "NiceGUI clients after all viewers left: 0 "],
    "storage_bench.py": ["CPU, 8 simulated GPUs + host at 1 s", "bytes per GPU-day:", "per GPU-day: minute tier",
                         "restart after kill -9: page live", "then the gap"],
}


def run_side_by_side(expected: dict[str, list[str]], timeout: float) -> None:
    """Each script with --quick, all at once: nothing here is timed, and the suite stays short."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    procs = {
        name: subprocess.Popen([sys.executable, str(ROOT / "bench" / name), "--quick"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        for name in expected
    }
    outputs = {}
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=timeout)
        outputs[name] = out
        assert proc.returncode == 0, f"{name} failed:\n{out[-3000:]}"
    for name, lines in expected.items():
        for line in lines:
            assert line in outputs[name], f"{name} did not print {line!r}:\n{outputs[name][-3000:]}"


def test_each_wall_benchmark_prints_its_figures() -> None:
    run_side_by_side(EXPECTED, timeout=110)


# a Glances install on first use, two servers and two browsers in turn: more than the default 120 s
# is allowed on a loaded machine; it takes about a minute on a quiet one
@pytest.mark.timeout(300)
def test_glances_comparison_and_soak_print_their_figures() -> None:
    run_side_by_side(EXPECTED_LONG, timeout=280)
