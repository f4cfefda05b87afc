"""W&B local run dirs (collectors/runs/formats/wandb_run.py), on a faithful synthetic run dir written live."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from runs_support import Watch, Writer

StartWatch = Callable[..., Watch]
RUN = "run-20241028_143626-cgh31nxi"


def summary(step: int, loss: float, **more: object) -> str:
    return json.dumps({"loss": loss, "train/loss": loss, "eval/loss": loss * 2, "_step": step,
                       "_runtime": 10.5 * step, "_timestamp": 1730126186.5 + step, "_wandb": {"runtime": 10},
                       "graph": {"_type": "graph-file", "path": "media/graph.json"}, **more})


def test_a_wandb_run_dir_is_one_run_with_summary_points_config_and_metadata(root: Path, writer: Writer,
                                                                             watch: StartWatch) -> None:
    w = watch()
    run = root / "wandb" / RUN
    files = run / "files"
    writer.mkdir(files)
    writer.write(run / "run-cgh31nxi.wandb", b":W&B\x00\x00binary records")
    writer.write(files / "wandb-metadata.json", json.dumps({
        "os": "Linux", "python": "3.11.9", "host": "gpu-07", "program": "train.py",
        "startedAt": "2024-10-28T14:36:26.123456Z", "gpu": "NVIDIA H100", "gpu_count": 1}))
    writer.write(files / "config.yaml", "_wandb:\n  value:\n    cli_version: 0.18.5\n"
                                        "lr:\n  desc: null\n  value: 0.001\n"
                                        "optimizer:\n  value:\n    name: adamw\n    betas: [0.9, 0.99]\n")
    writer.write(files / "output.log", "\x1b[34m\x1b[1mwandb\x1b[0m: Tracking run\nEpoch 1/10\n")
    writer.replace(files / "wandb-summary.json", summary(1, 0.9))
    writer.symlink(root / "wandb" / "latest-run", run)  # W&B's alias of the newest run: not a second run
    name = f"wandb/{RUN}"
    w.wait_run(name, format="wandb", step=1)
    writer.replace(files / "wandb-summary.json", summary(2, 0.5))  # rewritten whole, as W&B does
    w.wait_points(name, "loss", 2)
    assert [r["name"] for r in w.runs()] == [name]
    got = w.run(name)
    assert got is not None
    assert got["metrics"] == ["eval/loss", "loss", "train/loss"]  # prefixes stay distinct; _runtime, graph left out
    assert w.points(name, "loss") == [[1, 1730126187.5, 0.9], [2, 1730126188.5, 0.5]]
    assert got["params"] == {"lr": 0.001, "optimizer.name": "adamw", "optimizer.betas": "[0.9, 0.99]"}
    assert got["text"]["host"] == "gpu-07" and got["text"]["program"] == "train.py"
    assert got["text"]["started"] == "2024-10-28T14:36:26.123456Z"
    writer.append(files / "output.log", "Traceback (most recent call last):\n  File \"train.py\", line 9\n"
                                        "torch.OutOfMemoryError: CUDA out of memory.\n")
    crashed = w.wait_run(name, status="crashed")
    assert crashed["status_reason"].startswith("torch.OutOfMemoryError: CUDA out of memory. (output.log:")


def test_offline_run_dirs_are_runs_too(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    files = root / "wandb" / "offline-run-20250101_000000-abc123" / "files"
    writer.mkdir(files)
    writer.replace(files / "wandb-summary.json", summary(7, 0.25))
    assert w.wait_run("wandb/offline-run-20250101_000000-abc123", step=7)["format"] == "wandb"
