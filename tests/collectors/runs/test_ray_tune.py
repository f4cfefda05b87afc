"""Ray Tune / RLlib trial dirs (collectors/runs/formats/ray_tune.py), synthetic but shaped like Ray's own."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from runs_support import Watch, Writer

StartWatch = Callable[..., Watch]


def result(iteration: int, done: bool = False) -> str:
    return json.dumps({
        "episode_reward_mean": 10.0 * iteration, "timesteps_total": 4000 * iteration, "done": done,
        "training_iteration": iteration, "trial_id": "a1b2c3", "date": "2024-05-01_12-00-00",
        "timestamp": 1714564800 + iteration, "time_total_s": 3.5 * iteration, "pid": 4242, "hostname": "gpu-07",
        "config": {"lr": 0.0005}, "hist_stats": {"episode_reward": [1.0, 2.0]},
        "info": {"learner": {"default_policy": {"learner_stats": {"total_loss": 1.0 / iteration}}}},
    }) + "\n"


def progress_csv(*iterations: int) -> str:
    head = ("episode_reward_mean,timesteps_total,training_iteration,"
            "info/learner/default_policy/learner_stats/total_loss\n")
    return head + "".join(f"{10.0 * i},{4000 * i},{i},{1.0 / i}\n" for i in iterations)


def test_a_trial_dir_is_one_run_read_from_result_json_only(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    trial = root / "PPO_2024-05-01" / "PPO_CartPole-v1_a1b2c3_00000_0"
    writer.mkdir(trial)
    writer.write(trial / "params.json", json.dumps({"lr": 0.0005, "model": {"fcnet_hiddens": [64, 64]}}))
    writer.append(trial / "result.json", result(1) + result(2))
    writer.append(trial / "progress.csv", progress_csv(1, 2))
    name = "PPO_2024-05-01/PPO_CartPole-v1_a1b2c3_00000_0"
    got = w.wait_run(name, format="ray_tune", step=2)
    assert got["metrics"] == ["episode_reward_mean", "info/learner/default_policy/learner_stats/total_loss",
                              "time_total_s", "timesteps_total"]  # not doubled by progress.csv
    assert w.points(name, "episode_reward_mean") == [[1, 1714564801.0, 10.0], [2, 1714564802.0, 20.0]]
    assert w.wait_run(name, params={"lr": 0.0005, "model.fcnet_hiddens": "[64, 64]"})
    writer.append(trial / "result.json", result(3, done=True))
    assert w.wait_run(name, status="finished")["status_reason"] == "done: true in result.json (result.json:3)"


def test_a_failed_trial_is_crashed_by_its_error_txt(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    trial = root / "trial_1"
    writer.mkdir(trial)
    writer.write(trial / "params.json", "{}")
    writer.append(trial / "result.json", result(1))
    writer.write(trial / "error.txt", "Failure # 1 (occurred at 2024-05-01_12-00-05)\n"
                                      "Traceback (most recent call last):\n  File \"trainable.py\", line 3\n"
                                      "ValueError: observation out of bounds\n")
    reason = w.wait_run("trial_1", status="crashed")["status_reason"]
    assert reason == "ValueError: observation out of bounds (error.txt:2)"


def test_a_trial_with_progress_csv_only_is_read_from_it(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    writer.mkdir(root / "t")
    writer.write(root / "t" / "params.json", "{}")
    writer.append(root / "t" / "progress.csv", progress_csv(1, 2, 3))
    got = w.wait_run("t", format="ray_tune", step=3)
    assert "training_iteration" not in got["metrics"] and "episode_reward_mean" in got["metrics"]
