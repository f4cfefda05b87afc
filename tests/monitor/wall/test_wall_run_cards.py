"""The run cards' shared computation (monitor/wall/runs_panel.py), without a browser."""

from __future__ import annotations

import numpy as np

from monitor.model.run_points import smooth_debiased
from monitor.wall.gpu_tiles import UNKNOWN_RUN, join_texts, process_cells
from monitor.wall.runs_panel import MAX_CARDS, RunTrace, run_cells, shown_runs


def test_ema_continued_tick_by_tick_equals_tensorboard_smoothing() -> None:
    values = [3.0, 2.0, 2.5, 1.0, 1.7, 0.9, 1.2, 0.4]
    trace = RunTrace("loss", 1)
    got: list[float] = []
    for chunk in (values[:1], values[1:4], [], values[4:]):
        got += trace.add([[i, 0.0, v] for i, v in enumerate(chunk)]).ema
    assert np.allclose(got, smooth_debiased(values, 0.6), rtol=1e-4)
    assert trace.add([[9, 0.0, float("nan")]]).x == []  # not a number: no point, EMA unchanged


def test_shown_runs_most_recent_first_at_most_ten_ended_ones_drop_off() -> None:
    now = 10_000.0
    runs = [{"id": f"r{i}", "status": "running", "updated": now - i} for i in range(12)]
    assert [r["id"] for r in shown_runs(runs, now)] == [f"r{i}" for i in range(MAX_CARDS)]
    old = [{"id": "done", "status": "finished", "updated": now - 3600}, {"id": "on", "status": "stalled",
                                                                          "updated": now - 3600}]
    assert [r["id"] for r in shown_runs(old, now)] == ["on"]


def test_card_cells_and_faded_states() -> None:
    trace = RunTrace("loss", 1)
    trace.add([[1200, 0.0, 1.83]])
    runs = [{"id": "a", "name": "<b>llama</b>", "status": "running", "step": 1200, "total_steps": 5000,
             "rate_steps_per_s": 2.5, "eta_s": 1520, "main_metric": "loss",
             "gpus": [{"gpu": 0, "utilization_gpu_percent": 87.0}], "bad_lines": 0},
            {"id": "b", "name": "old", "status": "deleted", "step": None, "main_metric": None, "gpus": [],
             "bad_lines": 3}]
    cells = run_cells(runs, {"a": trace}, 0.0)
    assert cells["r0.name"].text == "<b>llama</b>"  # shown as text by a label
    assert cells["r0.step"].text == "step 1200 / 5000"
    assert cells["r0.rate"].text == "2.5 steps/s · ETA 25 min 20 s"
    assert cells["r0.metric"].text == "loss 1.83"
    assert cells["r0.gpus"].text == "GPU 0: 87%"
    assert cells["r1"].level == "r-deleted" and cells["r1.gpus"].level == "off"
    assert cells["r0.bad"].level == "off"  # no broken line: nothing to say
    assert (cells["r1.bad"].text, cells["r1.bad"].level) == ("⚠ 3 bad lines", "warn")
    assert cells["r2"].level == "off" and cells["runs.empty"].level == "off"
    assert run_cells([], {}, 0.0)["runs.empty"].level == ""


def test_joined_process_lines() -> None:
    join = {"by_pid": {11: {"run_id": "a", "run_name": "llama-ft", "reason": None},
                       12: {"run_id": None, "run_name": None, "reason": UNKNOWN_RUN},
                       13: {"run_id": None, "run_name": None, "reason": "no run"}}}
    texts = join_texts(join, [{"id": "a", "name": "llama-ft", "step": 1200, "main_metric": "loss"}], {"a": 1.83})
    assert texts == {11: "· llama-ft · step 1200 · loss 1.83", 12: UNKNOWN_RUN}
    cells = process_cells("g0.", [{"pid": p, "user": "alice", "command": "python x.py", "gpu_memory_bytes": 3 - p}
                                  for p in (11, 12, 13)], texts)
    assert (cells["g0.p0.u"].text, cells["g0.p0.c"].text, cells["g0.p0.r"].level) == (
        "alice", "· llama-ft · step 1200 · loss 1.83", "off")
    assert (cells["g0.p1.c"].text, cells["g0.p1.r"].text, cells["g0.p1.r"].level) == ("python x.py", UNKNOWN_RUN, "")
    assert (cells["g0.p2.c"].text, cells["g0.p2.r"].level) == ("python x.py", "off")


def test_feed_frames_carry_new_run_points_once_and_a_reset_starts_a_new_chart() -> None:
    from monitor.config import parse_config
    from monitor.model.store import Store
    from monitor.wall.feed import Frame, WallFeed

    now = [1_800_000_000.0]
    cfg = parse_config({"host_label": "h", "gpu": {"backend": "simulated"}})
    store = Store("h", cfg.history.window_s, cfg.history.day_tier)
    feed = WallFeed(store, cfg, clock=lambda: now[0])
    store.runs.add_run("run1", "llama-ft", "/r/llama-ft", "/r", "jsonl", now=now[0])

    def put(steps: list[int]) -> None:
        values = np.array([1.0 / s for s in steps])
        store.runs.merge_points("run1", "loss", np.array(steps, np.float64), np.full(len(steps), now[0]), values)

    def frame() -> Frame:
        now[0] += 1.0
        return feed.latest()

    put([1, 2, 3])
    first = frame()
    assert first.run_slots[0] == "run1" and first.run_slots[1:] == ("",) * (MAX_CARDS - 1)
    gen = first.run_points["run1"].gen
    assert first.run_points["run1"].x == [1.0, 2.0, 3.0]
    put([4, 5])
    second = frame()
    assert second.run_points["run1"].x == [4.0, 5.0] and second.run_points["run1"].gen == gen
    assert frame().run_points == {}  # nothing new: nothing to send
    assert feed.runs.history("run1").x == [1.0, 2.0, 3.0, 4.0, 5.0]
    store.runs.restart("run1")
    put([1, 2])
    reset = frame()
    assert reset.run_points["run1"].gen != gen and feed.runs.history("run1").x == [1.0, 2.0]
