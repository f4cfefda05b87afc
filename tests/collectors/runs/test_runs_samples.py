"""The samples written by the real libraries (tests/data/runs, see its README for versions), copied
into a watched root by a writer process: each layout is one run with the right points and status."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest
from runs_support import Watch, Writer

DATA = Path(__file__).resolve().parents[2] / "data" / "runs"
StartWatch = Callable[..., Watch]


def copy_tree(writer: Writer, source: Path, target: Path) -> None:
    """Write every file of `source` under `target` through the writer process (directories first)."""
    for path in sorted(source.rglob("*")):
        if path.is_dir():
            writer.mkdir(target / path.relative_to(source))
    writer.mkdir(target)
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        writer.append(target / path.relative_to(source), path.read_bytes())


def test_hf_trainer_sample_is_one_finished_run(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    copy_tree(writer, DATA / "hf_trainer", root / "hf_trainer")
    name = "hf_trainer/tiny-gpt2-clm"
    summary = w.wait_run(name, status="finished", total_steps=60)
    assert [r["name"] for r in w.runs()] == [name]  # train.log, checkpoints, trainer_state, tfevents: ONE run
    assert summary["format"] == "hf_trainer" and summary["bad_lines"] == 0
    assert "train_runtime" in summary["status_reason"]
    w.wait_points(name, "loss", 12)
    assert w.steps(name, "loss") == list(range(5, 61, 5))  # stdout, trainer_state and tfevents merged by step
    assert w.steps(name, "eval_loss") == [20, 40, 60]
    assert not any(m.startswith(("train/", "eval/", "args/")) for m in summary["metrics"])
    assert summary["main_metric"] == "loss" and summary["step"] == 60


def test_lightning_sample_versions_and_replayed_header_rewrites(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    copy_tree(writer, DATA / "lightning" / "mlp_regression", root / "mlp_regression")
    for version in ("version_0", "version_1"):
        summary = w.wait_run(f"mlp_regression/{version}", format="lightning_csv")
        assert summary["bad_lines"] == 0
    # Replay version_0's file as Lightning wrote it: rows, rewrite with a new header, more rows, rewrite, rows.
    snapshots = DATA / "lightning_snapshots"
    states = [(snapshots / f"v0_metrics_{kind}_rewrite_{i}.csv").read_bytes()
              for i in (0, 1) for kind in ("before", "after")]
    final = (DATA / "lightning" / "mlp_regression" / "version_0" / "metrics.csv").read_bytes()
    replay = root / "replay" / "version_0"
    writer.mkdir(replay)
    writer.append(replay / "metrics.csv", states[0])
    name = "replay/version_0"
    w.wait_points(name, "train_loss_step", 1)
    previous = states[0]
    for state in [*states[1:], final]:
        if state.startswith(previous):
            writer.append(replay / "metrics.csv", state[len(previous):])
        else:
            writer.write(replay / "metrics.csv", state)  # the rewrite: truncate, write everything again
        previous = state
    with (DATA / "lightning" / "mlp_regression" / "version_0" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    expected = sorted({int(r["step"]) for r in rows if r["train_loss_step"]})
    w.wait_points(name, "train_mae", 1)
    points = w.wait_points(name, "train_loss_step", len(expected))
    assert [int(p[0]) for p in points] == expected  # every row once, no duplicates after the rewrites
    assert w.run(name)["bad_lines"] == 0  # type: ignore[index]


def test_keras_csvlogger_sample_and_appended_rerun(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    copy_tree(writer, DATA / "keras_csv", root / "keras")
    summary = w.wait_run("keras", format="csv")
    assert w.wait_points("keras", "val_accuracy", 8) and summary["bad_lines"] == 0
    rerun = w.wait_run("keras/appended_rerun", format="csv")
    w.wait_points("keras/appended_rerun", "loss", 3)
    assert w.steps("keras/appended_rerun", "loss") == [0, 1, 2]  # epochs restart: the rerun replaces them
    assert rerun["bad_lines"] == 0


def test_tensorboard_samples_scalars_only(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    copy_tree(writer, DATA / "tensorboard", root / "tb")
    w.wait_points("tb/mlp_sgd_lr0.1", "loss", 100)
    summary = w.wait_run("tb/mlp_sgd_lr0.1", format="tensorboard")
    assert set(summary["metrics"]) == {"loss", "acc", "train/lr", "val/loss"}  # no histogram, no text
    assert w.steps("tb/mlp_sgd_lr0.1", "val/loss") == [25, 50, 75, 100]
    for key in ("loss_train", "loss_val"):  # add_scalars: one run per key, as TensorBoard shows it
        assert w.wait_points(f"tb/add_scalars_run/{key}", "loss", 1)


def test_jsonl_sample_finished_by_its_end_event(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    copy_tree(writer, DATA / "jsonl", root / "linreg")
    summary = w.wait_run("linreg", status="finished", format="jsonl")
    assert w.steps("linreg", "loss") == list(range(5, 101, 5))
    assert w.steps("linreg", "val_loss") == [25, 50, 75, 100]
    assert sorted(summary["metrics"]) == ["loss", "lr", "val_loss"]  # the start event's config is not a curve
    assert summary["text"]["phase"] == "eval" and summary["bad_lines"] == 0


def test_text_sample_crashed_with_its_oom_error(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    copy_tree(writer, DATA / "text", root / "console")
    summary = w.wait_run("console", status="crashed", format="text")
    assert summary["status_reason"].startswith("torch.OutOfMemoryError: CUDA out of memory")
    assert summary["bad_lines"] == 1 and "NaN" in summary["first_bad_line"]["reason"]  # loss=nan
    assert w.steps("console", "loss")[:3] == [10, 20, 30]


@pytest.mark.parametrize("sample", ["hf_trainer", "lightning", "jsonl"])
def test_runs_already_on_disk_are_loaded_at_start(root: Path, writer: Writer, watch: StartWatch, sample: str) -> None:
    copy_tree(writer, DATA / sample, root / sample)
    w = watch()
    assert w.runs() and all(r["bad_lines"] == 0 for r in w.runs())
    started = [e for e in w.events() if e.startswith("run started")]
    assert started == []  # runs found at start-up are not news
    if sample == "hf_trainer":
        w.wait_run("hf_trainer/tiny-gpt2-clm", status="finished")
