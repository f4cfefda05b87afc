"""A restart keeps the history: a real server with simulated GPUs runs ~3 minutes, is killed with
SIGKILL, and starts again on the same file; /api/history, /api/events and the wall's GPU chart in
Chromium show what happened before the kill, the chart with a gap where the restart was."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from browser_support import launched_browser, open_wall
from support import LabwallServer, wait_for

CONFIG = {"gpu": {"simulated_count": 2}, "storage": {"flush_s": 2}}
GPU_CHART_JS = """() => {
  const plot = document.querySelector('.wall .gpus .js-plotly-plot');
  return {x: plot.data[0].x, y: plot.data[0].y};
}"""


def closed_minutes(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(DISTINCT t) FROM minute_points").fetchone()[0])


@pytest.mark.timeout(480)
def test_history_survives_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "data" / "labwall.db"
    first = LabwallServer(tmp_path, CONFIG, args=["--demo"]).start()
    second = None
    try:
        started = time.time()
        wait_for(lambda: closed_minutes(db) >= 3, 260, 1.0, what="three minutes in the file")
        before = first.get("/api/events?limit=1000").json()["events"]
        first.stop(signal.SIGKILL)
        killed = time.time()

        second = LabwallServer(tmp_path, CONFIG, args=["--demo"]).start()
        body = second.get(f"/api/history?series=gpu_utilization_percent&gpu=0&since={started - 60}"
                          f"&until={killed}").json()
        assert body["step_s"] == 60
        minutes = [t for t, _, _ in body["points"]]
        assert len(minutes) >= 3 and all(started - 60 < t < killed for t in minutes), body
        assert all(0 <= mean <= peak <= 100 for _, mean, peak in body["points"])

        events = second.get("/api/events?limit=1000").json()["events"]
        old = [(e["time"], e["text"]) for e in before]
        assert old and [(e["time"], e["text"]) for e in events[:len(old)]] == old
        assert any(e["source"] == "storage" and "history restored" in e["text"] for e in events)

        with launched_browser() as browser:
            page = open_wall(browser, second.url)
            chart: dict[str, Any] = page.evaluate(GPU_CHART_JS)
        gap = chart["y"].index(None)
        assert gap >= 2, chart  # minutes from before the kill, then the restart drawn as a gap
        assert len(chart["y"]) > gap + 1 and None not in chart["y"][gap + 1:]
        assert chart["x"][gap - 1] < chart["x"][gap] < chart["x"][gap + 1]
    finally:
        first.stop()
        if second is not None:
            second.stop()
