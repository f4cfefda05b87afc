"""MLflow's file store (collectors/runs/formats/mlflow.py), written live as MLflow's FileStore writes it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from runs_support import Watch, Writer

StartWatch = Callable[..., Watch]
RUN_ID = "0123456789abcdef0123456789abcdef"


def meta(status: int | str) -> str:
    return (f"artifact_uri: file:///tmp/mlruns/1/{RUN_ID}/artifacts\nend_time: null\nexperiment_id: '1'\n"
            f"lifecycle_stage: active\nrun_id: {RUN_ID}\nrun_name: brave-owl-1\nstart_time: 1721820221296\n"
            f"status: {status}\nuser_id: lab\n")


def test_one_run_per_run_id_named_by_its_tag_with_metrics_params_and_status(root: Path, writer: Writer,
                                                                           watch: StartWatch) -> None:
    w = watch()
    experiment = root / "mlruns" / "1"
    run = experiment / RUN_ID
    for sub in ("metrics/train", "tags", "params"):
        writer.mkdir(run / sub)
    writer.write(experiment / "meta.yaml", "experiment_id: '1'\nname: exp\n")  # the experiment: not a run
    writer.write(run / "tags" / "mlflow.runName", "brave-owl-1")
    writer.write(run / "params" / "lr", "0.001")
    writer.write(run / "meta.yaml", meta(1))
    writer.append(run / "metrics" / "train" / "loss", "1721820222000 2.5 0\n1721820223000 2.0 1\n")
    w.wait_run("brave-owl-1", format="mlflow", step=1, status="running")
    writer.append(run / "metrics" / "eval_loss", "1721820224000 1.9 1\n")  # a new metric file, picked up live
    writer.append(run / "metrics" / "train" / "loss", "1721820225000 1.5 2\n")
    w.wait_points("brave-owl-1", "eval_loss", 1)
    w.wait_points("brave-owl-1", "train/loss", 3)
    got = w.run("brave-owl-1")
    assert got is not None and got["params"] == {"lr": "0.001"}
    assert w.points("brave-owl-1", "train/loss")[-1] == [2, 1721820225.0, 1.5]
    assert [r["name"] for r in w.runs()] == ["brave-owl-1"]
    writer.replace(run / "meta.yaml", meta("FINISHED"))  # MLflow rewrites meta.yaml at end_run
    assert w.wait_run("brave-owl-1", status="finished")["status_reason"] == "MLflow status FINISHED (meta.yaml)"


def test_killed_in_meta_yaml_is_crashed(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    run = root / "mlruns" / "0" / RUN_ID
    writer.mkdir(run / "metrics")
    writer.append(run / "metrics" / "loss", "1721820222000 2.5 0\n")
    writer.write(run / "meta.yaml", meta(5))
    assert w.wait_run(f"mlruns/0/{RUN_ID}", status="crashed")["status_reason"] == "MLflow status KILLED (meta.yaml)"
