"""Each runs benchmark runs (--quick) and prints its figures; no timing is asserted here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("script", "extra", "figures"), [
    ("run_backfill.py", [], ["runs loaded", "peak RSS while loading:", "/healthz while loading:"]),
    ("run_latency.py", [], ["append -> /api/runs/{id}/metrics: p50", "p95", "max"]),
    ("run_latency.py", ["--browser", "--interval", "0.5"], ["append -> point in the wall's run chart: p50", "p95"]),
])
def test_bench_prints_its_figures(script: str, extra: list[str], figures: list[str]) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--quick", *extra], capture_output=True,
                            text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for figure in figures:
        assert figure in result.stdout, result.stdout
