"""Tailing by identity and offset: truncation, replacement, rewrites, resumes and half-written JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from runs_support import Watch, Writer
from support import wait_for

StartWatch = Callable[..., Watch]


def jsonl(records: list[tuple[int, float]]) -> str:
    return "".join(json.dumps({"step": s, "loss": v}) + "\n" for s, v in records)


def test_truncated_and_rewritten_file_is_read_again_without_duplicates(root: Path, writer: Writer,
                                                                        watch: StartWatch) -> None:
    w = watch()
    path = root / "trunc" / "metrics.jsonl"
    writer.mkdir(path.parent)
    first = [(i, 1.0 / (i + 1)) for i in range(10)]
    writer.append(path, jsonl(first))
    w.wait_points("trunc", "loss", 10)
    writer.truncate(path)  # e.g. logrotate's copytruncate...
    writer.append(path, jsonl([*first, (10, 0.05), (11, 0.04)]))  # ...then the same history and more
    points = w.wait_points("trunc", "loss", 12)
    assert [p[0] for p in points] == list(range(12))
    assert w.run("trunc")["bad_lines"] == 0  # type: ignore[index]


def test_replaced_file_new_inode_restart_drops_the_old_points(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    path = root / "repl" / "metrics.jsonl"
    writer.mkdir(path.parent)
    writer.append(path, jsonl([(i, 5.0) for i in range(20)]))
    run = w.wait_run("repl", step=19)
    cursor = w.store.runs.read_metric_after(run["id"], "loss", 0).cursor  # type: ignore[union-attr]
    writer.replace(path, jsonl([(i, 1.0) for i in range(5)]))  # a new run written over the old file
    wait_for(lambda: [p[2] for p in w.points("repl", "loss")] == [1.0] * 5, what="the new file's points only")
    read = w.store.runs.read_metric_after(run["id"], "loss", cursor)
    assert read is not None and read.reset  # a chart reading with its cursor is told to start over
    assert [p[0] for p in read.points] == [0, 1, 2, 3, 4]


def test_replaced_file_with_the_same_history_duplicates_nothing(root: Path, writer: Writer,
                                                                 watch: StartWatch) -> None:
    w = watch()
    path = root / "same" / "metrics.jsonl"
    writer.mkdir(path.parent)
    history = [(i, 10.0 - i) for i in range(8)]
    writer.append(path, jsonl(history))
    run = w.wait_run("same", step=7)
    cursor = w.store.runs.read_metric_after(run["id"], "loss", 0).cursor  # type: ignore[union-attr]
    writer.replace(path, jsonl([*history, (8, 1.5)]))  # atomic rewrite: tmp file renamed over it
    w.wait_points("same", "loss", 9)
    read = w.store.runs.read_metric_after(run["id"], "loss", cursor)
    assert read is not None and not read.reset and [p[0] for p in read.points] == [8]


def test_step_going_backwards_drops_the_later_points(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    path = root / "resume" / "metrics.jsonl"
    writer.mkdir(path.parent)
    writer.append(path, jsonl([(s, 1.0) for s in range(0, 210, 10)]))
    w.wait_run("resume", step=200)
    writer.append(path, jsonl([(s, 0.5) for s in range(100, 160, 10)]))  # resumed from checkpoint 100
    w.wait_run("resume", step=150)
    points = w.points("resume", "loss")
    assert [p[0] for p in points] == list(range(0, 160, 10))  # 160..200 dropped, as TensorBoard does
    assert [p[2] for p in points[10:]] == [0.5] * 6


def test_appends_in_bursts_with_split_writes(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    path = root / "bursts" / "metrics.jsonl"
    writer.mkdir(path.parent)
    text = jsonl([(i, float(i)) for i in range(300)])
    for start in range(0, len(text), 997):  # writes that cut lines anywhere
        writer.append(path, text[start:start + 997])
    points = w.wait_points("bursts", "loss", 300)
    assert [p[0] for p in points] == list(range(300)) and w.run("bursts")["bad_lines"] == 0  # type: ignore[index]


def test_half_written_trainer_state_is_retried_not_counted(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    out = root / "hf-out"
    writer.mkdir(out / "checkpoint-10")
    writer.append(out / "training_args.bin", b"\x80\x04fake")
    state = json.dumps({"global_step": 10, "max_steps": 40, "log_history": [
        {"loss": 2.0, "step": 5}, {"loss": 1.5, "step": 10}]}, indent=2)
    target = out / "checkpoint-10" / "trainer_state.json"
    writer.write(target, state[: len(state) // 2])  # caught mid-write
    w.wait_run("hf-out", format="hf_trainer")
    key = w.collector.owner.get(str(target))
    wait_for(lambda: key in w.collector.retries, what="the half-written file scheduled for another read")
    assert w.run("hf-out")["bad_lines"] == 0  # type: ignore[index]
    writer.write(target, state)
    w.wait_points("hf-out", "loss", 2)
    summary = w.wait_run("hf-out", total_steps=40)
    assert summary["bad_lines"] == 0


def test_overlong_line_is_skipped_and_reading_goes_on(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch(max_line_bytes=4096)
    path = root / "long" / "metrics.jsonl"
    writer.mkdir(path.parent)
    writer.append(path, jsonl([(0, 1.0)]) + '{"step": 1, "blob": "' + "x" * 20000)
    writer.append(path, "x" * 20000 + '"}\n' + jsonl([(2, 0.5)]))
    w.wait_points("long", "loss", 2)
    summary = w.wait_run("long", bad_lines=1)
    assert summary["first_bad_line"]["line"] == 2 and "longer than 4096" in summary["first_bad_line"]["reason"]
