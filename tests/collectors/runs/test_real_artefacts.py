"""Real run files from public repositories (tests/data/real/, SOURCES.md) read by a real RunsCollector and
compared with tests/data/real/expected.json, whose values compute_expected.py derives without labwall.

Each artefact's project folder is copied into a fresh run root with its files dated 30 days back: an old
run found on disk with no process writing it. Compared: run count, format, metric names, points per metric,
last step and value, total steps, and the status (finished, or crashed where the file itself says the run
failed; never running, stalled or crashed otherwise).

One convention differs from the expectation rules on purpose: labwall keeps `epoch` as a metric (plotted
against the step it shows the epoch boundaries), where compute_expected.py treats it as an axis; `epoch`
is left out of the name comparison (its points are still there).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from runs_support import Watch
from support import wait_for

REAL = Path(__file__).resolve().parents[2] / "data" / "real"
EXPECTED = json.loads((REAL / "expected.json").read_text())["artefacts"]
FORMATS = {  # expected.json's layout names -> labwall's format names
    "hf_trainer_state": "hf_trainer",
    "lightning_csv": "lightning_csv",
    "sb3_progress_csv": "sb3",
    "keras_csv": "csv",
    "dvclive": "dvclive",
    "mlflow_file_store": "mlflow",
    "tensorboard": "tensorboard",
    "wandb_run_dir": "wandb",
}
AXES = frozenset({"epoch"})
OLD_S = 30 * 86400
REL_TOL = 1e-6  # the registry keeps values as float32 (run_points.py): 7 significant digits


def project_of(key: str) -> Path:
    """The artefact's project folder: tests/data/real/<layout>/<project>."""
    group, project = key.split("/")[:2]
    return REAL / group / project


def copy_old(source: Path, root: Path) -> Path:
    target = root / source.name
    shutil.copytree(source, target)
    then = time.time() - OLD_S
    for directory, _, files in os.walk(target):
        for name in files:
            os.utime(os.path.join(directory, name), (then, then))
    return target


def expected_status(expected: dict[str, Any]) -> str:
    failed = expected["format"] == "mlflow_file_store" and expected["notes"].get("meta_status") in ("FAILED", "KILLED")
    return "crashed" if failed else "finished"


def read_run(root: Path) -> tuple[list[dict[str, Any]], Watch]:
    w = Watch(root, use_events=False, writer_check_s=0).start()
    wait_for(lambda: all(s.loaded for s in w.collector.runs.values()) and not w.collector.dirty, timeout=20,
             what="every run read once")
    return w.runs(), w


def compare(key: str, expected: dict[str, Any], runs: list[dict[str, Any]], w: Watch) -> list[str]:
    """What labwall reports differently from expected.json (an empty list: all agree)."""
    wrong: list[str] = []
    if len(runs) != 1:
        return [f"{len(runs)} runs: {[r['name'] for r in runs]}"]
    run = runs[0]
    if run["format"] != FORMATS[expected["format"]]:
        wrong.append(f"format {run['format']!r}")
    names = set(run["metrics"]) - AXES
    want = set(expected["metrics"]) - AXES
    if names != want:
        wrong.append(f"metrics: missing {sorted(want - names)}, extra {sorted(names - want)}")
    for metric in sorted(want & names):
        exp = expected["metrics"][metric]
        read = w.store.runs.read_metric_after(run["id"], metric, 0)
        points = read.points if read else []
        if len(points) != exp["points"]:
            wrong.append(f"{metric}: {len(points)} points, not {exp['points']}")
        if points:
            step, _, value = points[-1]
            if int(step) != exp["last_step"] or not math.isclose(value, exp["last_value"], rel_tol=REL_TOL):
                wrong.append(f"{metric}: last ({int(step)}, {value}), not ({exp['last_step']}, {exp['last_value']})")
    if run["total_steps"] != expected["total_steps"]:
        wrong.append(f"total_steps {run['total_steps']}, not {expected['total_steps']}")
    if run["status"] != expected_status(expected):
        wrong.append(f"status {run['status']} ({run['status_reason']})")
    return wrong


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_real_artefact_reads_as_expected(key: str, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    copy_old(project_of(key), root)
    runs, w = read_run(root)
    try:
        assert compare(key, EXPECTED[key], runs, w) == []
    finally:
        w.stop()


def test_real_hyperparameters_and_run_names(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    for key in ("mlflow/YevhenFomichov_firstpub", "dvclive/dberenbaum_dvclive-fabric",
                "lightning/Arshya-Guru_deepmind-research"):
        copy_old(REAL / key, root)
    runs, w = read_run(root)
    try:
        by_format = {r["format"]: r for r in runs}
        mlflow = wait_for(lambda: (r := w.run("nervous-horse-960")) and r["params"] and r, what="MLflow params")
        assert mlflow["params"]["input_shape"] == "(2205, 1)"  # params/<key> files, name from tags/mlflow.runName
        assert mlflow["status_reason"] == "MLflow status FAILED (meta.yaml)"  # meta.yaml's `status: 4`
        assert by_format["dvclive"]["params"] == {"batch_size": 64, "epochs": 5, "lr": 1.0, "gamma": 0.7,
                                                  "dry_run": False, "seed": 1, "log_interval": 10, "save_model": True}
        lightning = by_format["lightning_csv"]["params"]  # nested maps flattened; a !!python/tuple read as a list
        assert lightning["checkpoint.save_dir"] == "/tmp/byol3d_smoke" and lightning["data.data_dir"] == "null"
        assert lightning["batch_size"] == 2 and lightning["data.pin_memory"] is False
        assert lightning["optimizer.betas"] == "[0.9, 0.999]"
    finally:
        w.stop()
