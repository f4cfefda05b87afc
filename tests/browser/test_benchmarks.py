"""Each wall benchmark runs (`--quick`) and prints its figures. No timing is asserted here: the
figures are recorded in docs/BENCHMARKS.md from full runs."""

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
                   "server CPU per extra viewer:"],
}


def test_each_wall_benchmark_prints_its_figures() -> None:
    # the three run side by side: nothing here is timed, and the suite stays short
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    procs = {
        name: subprocess.Popen([sys.executable, str(ROOT / "bench" / name), "--quick"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        for name in EXPECTED
    }
    outputs = {}
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=110)
        outputs[name] = out
        assert proc.returncode == 0, f"{name} failed:\n{out[-3000:]}"
    for name, lines in EXPECTED.items():
        for line in lines:
            assert line in outputs[name], f"{name} did not print {line!r}:\n{outputs[name][-3000:]}"
