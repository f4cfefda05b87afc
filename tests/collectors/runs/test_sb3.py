"""Stable-Baselines3's progress.csv (collectors/runs/formats/sb3.py), and a layout with no end marker:
its writer exiting is an end, not a crash."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from runs_support import Watch, Writer

StartWatch = Callable[..., Watch]
HEAD = "time/fps,rollout/ep_rew_mean,time/total_timesteps,time/iterations\n"
WIDER = "time/fps,rollout/ep_rew_mean,time/total_timesteps,time/iterations,train/loss,eval/loss\n"


def test_progress_csv_steps_by_total_timesteps_and_follows_a_rewritten_header(root: Path, writer: Writer,
                                                                             watch: StartWatch) -> None:
    w = watch()
    logs = root / "ppo" / "logs"
    writer.mkdir(logs)
    writer.append(logs / "progress.csv", HEAD + "800,1.5,2048,1\n")
    got = w.wait_run("ppo/logs", format="sb3", step=2048)
    assert got["metrics"] == ["rollout/ep_rew_mean", "time/fps", "time/iterations"]
    # SB3 rewrites the file with a wider header when new keys appear (earlier rows get empty cells).
    writer.replace(logs / "progress.csv", WIDER + "800,1.5,2048,1,,\n" + "790,2.5,4096,2,0.25,0.5\n")
    w.wait_points("ppo/logs", "train/loss", 1)
    assert w.points("ppo/logs", "rollout/ep_rew_mean")[-1][0::2] == [4096, 2.5]
    assert w.points("ppo/logs", "eval/loss")[0][0::2] == [4096, 0.5]
    assert len(w.points("ppo/logs", "time/fps")) == 2  # merged by step, not duplicated by the rewrite


def test_a_writer_exiting_ends_a_run_of_a_layout_without_an_end_marker(root: Path, watch: StartWatch) -> None:
    w = watch(writer_check_s=0.2)
    writer = Writer()
    try:
        path = root / "sb3" / "progress.csv"
        writer.mkdir(path.parent)
        writer.append(path, HEAD + "800,1.5,2048,1\n")
        writer.hold(path)  # SB3's CSV logger keeps progress.csv open while training
        writer.append(path, "790,2.5,4096,2\n")
        w.wait_run("sb3", writer_pids=[writer.pid], status="running")
    finally:
        writer.close()  # a normal exit: no end marker in the file
    summary = w.wait_run("sb3", status="finished")
    assert summary["status_reason"].startswith(f"writer process {writer.pid} (python")
    assert summary["status_reason"].endswith("exited; this layout records no end")


def test_hyperparameters_of_a_jsonl_config_event_and_an_hf_output_dir(root: Path, writer: Writer,
                                                                      watch: StartWatch) -> None:
    w = watch()
    writer.mkdir(root / "j")
    writer.append(root / "j" / "metrics.jsonl", '{"event": "config", "lr": 0.1, "model": {"layers": 12}}\n'
                                               '{"step": 1, "loss": 2.0}\n')
    assert w.wait_run("j", step=1, params={"lr": 0.1, "model.layers": 12})["metrics"] == ["loss"]
    # A hyperparameter named like a metric (text in the config, numbers in the records) is no bad line.
    writer.mkdir(root / "k")
    writer.append(root / "k" / "metrics.jsonl", '{"event": "config", "loss": "cross-entropy", "warmup": 100}\n'
                                               '{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.5}\n')
    k = w.wait_run("k", step=2, params={"loss": "cross-entropy", "warmup": 100})
    assert k["bad_lines"] == 0 and k["metrics"] == ["loss"] and len(w.points("k", "loss")) == 2
    writer.mkdir(root / "hf")
    writer.write(root / "hf" / "config.json", '{"model_type": "gpt2", "n_layer": 2}')
    writer.write(root / "hf" / "trainer_state.json", '{"global_step": 5, "max_steps": 10, "logging_steps": 5, '
                                                     '"log_history": [{"loss": 1.0, "step": 5}]}')
    w.wait_run("hf", params={"config.model_type": "gpt2", "config.n_layer": 2, "trainer.max_steps": 10,
                             "trainer.logging_steps": 5})
