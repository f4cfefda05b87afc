"""DVCLive's directory (collectors/runs/formats/dvclive.py), written live as DVCLive writes it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from runs_support import Watch, Writer

StartWatch = Callable[..., Watch]


def test_dvclive_dir_is_one_run_with_nested_metric_names_and_params(root: Path, writer: Writer,
                                                                   watch: StartWatch) -> None:
    w = watch()
    live = root / "project" / "dvclive"
    metrics = live / "plots" / "metrics"
    writer.mkdir(metrics / "train")
    writer.mkdir(metrics / "eval")
    writer.write(live / "params.yaml", "lr: 0.01\nmodel:\n  depth: 4\n")
    writer.append(metrics / "train" / "loss.tsv", "timestamp\tstep\tloss\n1721820222000\t0\t2.5\n")
    writer.append(metrics / "eval" / "loss.tsv", "step\tloss\n0\t2.7\n")
    writer.write(live / "metrics.json", '{"step": 0, "train": {"loss": 2.5}, "eval": {"loss": 2.7}}')
    w.wait_run("project/dvclive", format="dvclive")
    writer.append(metrics / "train" / "loss.tsv", "1721820223000\t1\t2.0\n")
    assert w.wait_points("project/dvclive", "train/loss", 2) == [[0, 1721820222.0, 2.5], [1, 1721820223.0, 2.0]]
    got = w.run("project/dvclive")
    assert got is not None
    assert got["metrics"] == ["eval/loss", "train/loss"]  # the same leaf name under two prefixes stays two metrics
    assert got["params"] == {"lr": 0.01, "model.depth": 4}
    assert [r["name"] for r in w.runs()] == ["project/dvclive"]
