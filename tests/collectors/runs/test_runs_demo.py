"""The demo trainer writes real runs that the watcher follows: a run grows, finishes, the next starts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from runs_support import Watch
from support import wait_for

from monitor.demo.trainer import start_demo_trainer, stop_demo_trainer

StartWatch = Callable[..., Watch]


def test_demo_trainer_runs_are_followed_live(root: Path, watch: StartWatch) -> None:
    w = watch(writer_check_s=0.2)
    process = start_demo_trainer(root, steps=6, interval_s=0.1, keep=1)
    try:
        # the step and the total reach the summary on the collector's next status pass: wait for both
        first = wait_for(lambda: next((r for r in w.runs() if r["status"] == "running" and r["step"]
                                       and r["total_steps"] is not None), None),
                         timeout=10, what="a running demo run with its total")
        assert first["format"] == "jsonl" and first["total_steps"] == 6 and first["main_metric"] == "loss"
        assert first["writer_pids"] == [process.pid] or first["writer_pids"] == []
        w.wait_run(first["name"], status="finished", timeout=10)
        assert len(w.points(first["name"], "loss")) == 6
        # The next run starts; with keep=1 the first is deleted from disk and shown greyed.
        w.wait_run(first["name"], status="deleted", timeout=15)
        assert any(r["name"] != first["name"] and r["status"] in ("running", "finished") for r in w.runs())
    finally:
        stop_demo_trainer(process)
    assert process.poll() is not None
