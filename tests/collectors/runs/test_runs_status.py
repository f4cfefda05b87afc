"""Run status from files and processes: running, stalled, finished, crashed; step rate and ETA."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from runs_support import Watch, Writer
from support import wait_for

StartWatch = Callable[..., Watch]


def line(step: int, **fields: object) -> str:
    return json.dumps({"step": step, "loss": 1.0 / (step + 1), **fields}) + "\n"


def test_running_then_stalled_then_running_again(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch(stall_min_s=0.6, stall_factor=1)
    writer.mkdir(root / "s")
    writer.append(root / "s" / "metrics.jsonl", line(0))
    w.wait_run("s", status="running")
    summary = w.wait_run("s", status="stalled", timeout=5)
    assert summary["status_reason"] == "no new data for more than 1 s"
    w.wait_event("run s stalled: no new data")
    writer.append(root / "s" / "metrics.jsonl", line(1))
    w.wait_run("s", status="running")
    w.wait_event("run s is running again")


def test_finished_by_end_event_and_by_reaching_the_total(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    writer.mkdir(root / "ev")
    writer.append(root / "ev" / "metrics.jsonl", line(0) + line(1))
    w.wait_run("ev", status="running")
    writer.append(root / "ev" / "metrics.jsonl", json.dumps({"event": "end"}) + "\n")
    summary = w.wait_run("ev", status="finished")
    assert summary["status_reason"] == '{"event": "end"} logged (metrics.jsonl:3)'
    w.wait_event('run ev finished: {"event": "end"} logged')

    writer.mkdir(root / "total")
    writer.append(root / "total" / "metrics.jsonl", json.dumps({"event": "start", "total_steps": 3}) + "\n" + line(1))
    w.wait_run("total", status="running", total_steps=3)
    writer.append(root / "total" / "metrics.jsonl", line(2) + line(3))
    assert w.wait_run("total", status="finished")["status_reason"] == "step 3 reached the total of 3"


def test_crashed_by_a_traceback_in_the_runs_log(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    run = root / "tb-crash"
    writer.mkdir(run)
    writer.append(run / "metrics.jsonl", line(0) + line(1))
    writer.append(run / "train.log", "epoch 1 done\n")
    w.wait_run("tb-crash", status="running")
    writer.append(run / "train.log", "Traceback (most recent call last):\n"
                                     '  File "train.py", line 3, in <module>\n'
                                     "    main()\n"
                                     "ValueError: shapes (3,) and (4,) not aligned\n")
    summary = w.wait_run("tb-crash", status="crashed")
    assert summary["status_reason"] == "ValueError: shapes (3,) and (4,) not aligned (train.log:2)"
    w.wait_event("run tb-crash crashed: ValueError")
    # The same script restarted and appending again: the run goes on.
    writer.append(run / "metrics.jsonl", line(2))
    w.wait_run("tb-crash", status="running")


def test_crashed_by_cuda_oom_in_a_text_log(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    writer.mkdir(root / "oom")
    writer.append(root / "oom" / "out.log", "step=1 loss=2.0\nstep=2 loss=1.9\n")
    w.wait_run("oom", status="running")
    writer.append(root / "oom" / "out.log", "RuntimeError: CUDA error: an illegal memory access was encountered\n")
    assert w.wait_run("oom", status="crashed")["status_reason"].startswith("RuntimeError: CUDA error")


def test_crashed_when_the_writer_process_dies_before_finishing(root: Path, watch: StartWatch) -> None:
    w = watch(writer_check_s=0.2)
    writer = Writer()
    try:
        path = root / "killed" / "metrics.jsonl"
        writer.mkdir(path.parent)
        writer.append(path, line(0))
        writer.hold(path)  # keeps metrics.jsonl open, as a trainer's logger does
        writer.append(path, line(1))
        w.wait_run("killed", writer_pids=[writer.pid])
        assert w.run("killed")["status"] == "running"  # type: ignore[index]
    finally:
        writer.kill()
    summary = w.wait_run("killed", status="crashed")
    assert summary["status_reason"].startswith(f"writer process {writer.pid} (python")
    assert summary["status_reason"].endswith("exited before the run finished")
    assert summary["writer_pids"] == []


def test_writer_exiting_after_the_end_marker_is_finished_not_crashed(root: Path, watch: StartWatch) -> None:
    w = watch(writer_check_s=0.2)
    writer = Writer()
    path = root / "clean" / "metrics.jsonl"
    writer.mkdir(path.parent)
    writer.append(path, line(0))
    writer.hold(path)
    w.wait_run("clean", writer_pids=[writer.pid])
    writer.append(path, json.dumps({"event": "end"}) + "\n")
    w.wait_run("clean", status="finished")
    writer.close()
    wait_for(lambda: writer.proc.poll() is not None, what="the writer to exit")
    exited = time.time()
    wait_for(lambda: w.collector.next_writer_check > exited + 0.4, what="two writer checks after the exit")
    assert w.run("clean")["status"] == "finished"  # type: ignore[index]


def test_step_rate_and_eta_when_the_total_is_known(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    start = time.time() - 2.0
    records = [json.dumps({"event": "start", "total_steps": 100})]
    records += [json.dumps({"step": s, "loss": 1.0, "time": start + s * 0.1}) for s in range(0, 21)]
    writer.mkdir(root / "eta")
    writer.append(root / "eta" / "metrics.jsonl", "\n".join(records) + "\n")
    summary = w.wait_run("eta", step=20, status="running")
    summary = wait_for(lambda: (s := w.run("eta")) and s["rate_steps_per_s"] and s, what="a step rate")
    assert abs(summary["rate_steps_per_s"] - 10.0) < 0.01
    assert abs(summary["eta_s"] - 8.0) < 0.1
    assert summary["total_steps"] == 100
