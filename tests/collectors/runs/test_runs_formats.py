"""Each run layout, written by a real writer process while the watcher runs: one run per layout."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from runs_support import Watch, Writer
from support import wait_for

StartWatch = Callable[..., Watch]


def test_jsonl_run_follows_appends_in_bursts(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    run = root / "exp-a"
    writer.mkdir(run)
    writer.lines(run / "metrics.jsonl", [{"step": i, "loss": 1 / (i + 1), "lr": 1e-3, "phase": "warmup"}
                                         for i in range(50)])
    summary = w.wait_run("exp-a", format="jsonl")
    for burst in range(3):
        writer.lines(run / "metrics.jsonl", [{"step": 50 + burst * 20 + i, "loss": 0.01, "lr": 1e-3, "phase": "main"}
                                             for i in range(20)])
    points = w.wait_points("exp-a", "loss", 110)
    assert [p[0] for p in points] == list(range(110))  # every line once, in order
    summary = w.wait_run("exp-a", step=109)
    assert summary["metrics"] == ["loss", "lr"]
    assert summary["text"] == {"phase": "main"}  # strings are text fields, not metrics
    assert summary["bad_lines"] == 0 and summary["first_bad_line"] is None
    assert summary["main_metric"] == "loss"
    assert "run started: exp-a (jsonl)" in w.events()


def test_jsonl_without_step_uses_position_and_its_own_time(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    writer.mkdir(root / "nostep")
    writer.lines(root / "nostep" / "metrics.jsonl",
                 [{"loss": 3.0 - i, "time": 1_700_000_000 + i, "train": {"acc": i / 10}} for i in range(3)])
    points = w.wait_points("nostep", "loss", 3)
    assert [(p[0], p[1], p[2]) for p in points] == [(0, 1.7e9, 3.0), (1, 1.7e9 + 1, 2.0), (2, 1.7e9 + 2, 1.0)]
    assert w.steps("nostep", "train/acc") == [0, 1, 2]  # nested objects are flattened one level


def test_partial_line_waits_until_it_is_complete(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    path = root / "partial" / "metrics.jsonl"
    writer.mkdir(path.parent)
    writer.append(path, '{"step": 0, "loss": 1.0}\n{"step": 1, "lo')
    w.wait_points("partial", "loss", 1)
    wait_for(lambda: w.source_consumed(path), what="the partial line read")
    assert w.steps("partial", "loss") == [0]
    assert w.run("partial")["bad_lines"] == 0  # type: ignore[index]
    writer.append(path, 'ss": 0.5}\n')
    assert [p[2] for p in w.wait_points("partial", "loss", 2)] == [1.0, 0.5]
    assert w.run("partial")["bad_lines"] == 0  # type: ignore[index]


def test_csv_with_header_keras_style(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    writer.mkdir(root / "keras")
    writer.append(root / "keras" / "history.csv", "epoch,accuracy,loss,val_loss\n0,0.5,1.2,1.3\n1,0.6,0.9,1.0\n")
    w.wait_points("keras", "val_loss", 2)
    writer.append(root / "keras" / "history.csv", "2,0.7,0.7,0.8\r\n")
    points = w.wait_points("keras", "loss", 3)
    assert [(p[0], p[2]) for p in points] == [(0, 1.2), (1, 0.9), (2, 0.7)]  # epoch is the step
    assert w.run("keras")["format"] == "csv"  # type: ignore[index]


def test_lightning_version_dir_survives_the_header_rewrite(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    version = root / "mnist" / "lightning_logs" / "version_0"
    writer.mkdir(version)
    writer.append(version / "hparams.yaml", "lr: 0.001\n")
    writer.append(version / "metrics.csv", "epoch,step,train_loss\n0,9,2.0\n0,19,1.5\n")
    name = "mnist/lightning_logs/version_0"
    w.wait_points(name, "train_loss", 2)
    # A new key: Lightning reads the file, truncates it and writes everything again with a new (sorted) header.
    writer.write(version / "metrics.csv", "epoch,step,train_loss,val_loss\n0,9,2.0,\n0,19,1.5,\n0,19,,1.7\n")
    writer.append(version / "metrics.csv", "1,29,1.2,\n")
    w.wait_points(name, "train_loss", 3)
    w.wait_points(name, "val_loss", 1)
    assert w.steps(name, "train_loss") == [9, 19, 29]  # re-read without duplicates
    summary = w.run(name)
    assert summary is not None and summary["format"] == "lightning_csv" and summary["bad_lines"] == 0


def test_tensorboard_logdir_read_with_tensorboards_reader(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    logdir = root / "tb" / "run1"
    writer.scalars(logdir, [("loss", 1.0, 0), ("loss", 0.5, 1), ("acc", 0.1, 1)])
    w.wait_points("tb/run1", "loss", 2)
    writer.scalars(logdir, [("loss", 0.25, 2)])
    points = w.wait_points("tb/run1", "loss", 3)
    assert [(p[0], p[2]) for p in points] == [(0, 1.0), (1, 0.5), (2, 0.25)]
    assert w.run("tb/run1")["format"] == "tensorboard"  # type: ignore[index]


def test_hf_trainer_output_dir_is_one_run(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    out = root / "bert-finetune"
    writer.mkdir(out)
    # Captured stdout+stderr: tqdm redraws with \r, HF's log dicts with numbers as strings.
    log = out / "train.log"
    writer.append(log, "Loading checkpoint shards: 100%|██████████| 2/2 [00:01<00:00,  1.9it/s]\n")
    writer.append(log, "  0%|          | 0/20 [00:00<?, ?it/s]\r 20%|██        | 4/20 [00:01<00:03,  4.9it/s]")
    # tqdm.write clears the bar and prints the dict before the bar is redrawn with the new step (5)
    writer.append(log, "\r          \r{'loss': '3.811', 'grad_norm': '0.9635', 'learning_rate': '0.00015', "
                       "'epoch': '0.25'}\n\r 25%|██▌       | 5/20 [00:01<00:03,  4.9it/s]")
    events = out / "runs" / "Nov25_12-00-00_gpu1"
    writer.scalars(events, [("train/loss", 3.8114, 5), ("train/learning_rate", 1.5e-4, 5)])
    w.wait_points("bert-finetune", "loss", 1)
    writer.append(log, "\r          \r{'loss': '2.5', 'grad_norm': '0.7', 'learning_rate': '0.0001', 'epoch': '0.5'}\n"
                       "\r 50%|█████     | 10/20 [00:02<00:02,  4.9it/s]")
    state = {"global_step": 10, "max_steps": 20, "logging_steps": 5, "log_history": [
        {"loss": 3.8114, "grad_norm": 0.96, "learning_rate": 1.5e-4, "epoch": 0.25, "step": 5},
        {"loss": 2.5002, "grad_norm": 0.70, "learning_rate": 1.0e-4, "epoch": 0.5, "step": 10},
        {"eval_loss": 2.9, "eval_runtime": 1.2, "epoch": 0.5, "step": 10},
    ]}
    writer.mkdir(out / "checkpoint-10")
    writer.write(out / "checkpoint-10" / "trainer_state.json", json.dumps(state, indent=2))
    w.wait_points("bert-finetune", "eval_loss", 1)
    assert [r["name"] for r in w.runs()] == ["bert-finetune"]  # one run, not one per file
    summary = w.wait_run("bert-finetune", total_steps=20, format="hf_trainer")
    assert w.steps("bert-finetune", "loss") == [5, 10]  # the same points from three files, merged by step
    assert "train/loss" not in summary["metrics"] and "learning_rate" in summary["metrics"]
    writer.append(log, "\r100%|██████████| 20/20 [00:04<00:00,  4.9it/s]\r          \r"
                       "{'train_runtime': '4.1', 'train_samples_per_second': '39', 'train_loss': '2.9', "
                       "'epoch': '1.0'}\n"
                       "\r100%|██████████| 20/20 [00:04<00:00,  4.9it/s]\n")
    summary = w.wait_run("bert-finetune", status="finished")
    assert "train_runtime" in summary["status_reason"]


def test_text_logs_pairs_dicts_and_tqdm(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    log = root / "plain" / "train.log"
    writer.mkdir(log.parent)
    writer.append(log, "2025-11-25 12:00:00 INFO starting, 2 GPUs\n"
                       "Namespace(lr=0.1, batch_size=64, seed=1)\n"
                       "step=1 loss=0.90 lr=1e-3\n"
                       "step: 2 | loss: 0.80 | acc: 0.61\n"
                       "{'step': 3, 'loss': 0.7}\n"
                       "12:00:05 INFO train: step 4/50 loss=0.65\n")
    points = w.wait_points("plain", "loss", 4)
    assert [(p[0], p[2]) for p in points] == [(1, 0.9), (2, 0.8), (3, 0.7), (4, 0.65)]
    summary = w.wait_run("plain", format="text", total_steps=50)
    assert set(summary["metrics"]) == {"loss", "lr", "acc"}  # not the Namespace(...) arguments

    bars = root / "bars" / "train.log"
    writer.mkdir(bars.parent)
    writer.append(bars, " 40%|████      | 40/100 [00:04<00:06,  9.9it/s, loss=0.65]\r"
                        " 41%|████      | 41/100 [00:04<00:06,  9.9it/s, loss=0.64]\r"
                        " 42%|████▏     | 42/100 [00:04<00:06,  9.9it/s, loss=0.63]")
    points = w.wait_points("bars", "loss", 3)
    assert [p[0] for p in points] == [40, 41, 42]  # each redraw counts, the newest one (no \r yet) too
    assert w.wait_run("bars", total_steps=100)["step"] == 42
