"""How the demo trainer writes a run, in the layouts real trainers leave on disk.

Each writer keeps its files open while the run goes on (as real trainers do), so the run join
finds the demo process through /proc exactly as it finds a real one.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import IO, Any

import yaml

CRASH_TRACEBACK = """Traceback (most recent call last):
  File "train.py", line 212, in <module>
    main()
  File "train.py", line 188, in main
    loss.backward()
RuntimeError: CUDA error: an illegal memory access was encountered
"""


class RunWriter:
    """One run in one layout: `start`, then `log` a step at a time, then `end` or `crash`."""

    layout = ""

    def __init__(self, run_dir: Path, total: int, params: dict[str, Any]) -> None:
        self.run_dir = run_dir
        self.total = total
        self.params = params
        self.files: list[IO[str]] = []

    def open(self, relative: str | Path) -> IO[str]:
        path = self.run_dir / relative  # an absolute path stays itself
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a", buffering=1, encoding="utf-8")
        self.files.append(handle)
        return handle

    def start(self) -> None: ...

    def log(self, step: int, metrics: dict[str, float]) -> None: ...

    def end(self) -> None:
        self.close()

    def crash(self) -> None:
        self.close()

    def close(self) -> None:
        for handle in self.files:
            handle.close()
        self.files = []


class JsonlRun(RunWriter):
    """`metrics.jsonl` (a config line, a start with total_steps, one line a step, an end event) and `train.log`."""

    layout = "jsonl"

    def start(self) -> None:
        self.metrics = self.open("metrics.jsonl")
        self.text = self.open("train.log")
        self.metrics.write(json.dumps({"event": "config", **self.params}) + "\n")
        self.metrics.write(json.dumps({"event": "start", "total_steps": self.total, "time": _now()}) + "\n")
        self.text.write(f"demo trainer: {self.total} steps, lr {self.params.get('lr')}\n")

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.metrics.write(json.dumps({"step": step, **metrics, "time": _now()}) + "\n")
        self.text.write(f"step={step} " + " ".join(f"{k}={v:.4g}" for k, v in metrics.items()) + "\n")

    def end(self) -> None:
        self.metrics.write(json.dumps({"event": "end", "step": self.total, "time": _now()}) + "\n")
        self.text.write("training finished\n")
        self.close()

    def crash(self) -> None:
        self.text.write(CRASH_TRACEBACK)
        self.close()


class LightningRun(RunWriter):
    """A Lightning CSVLogger version dir: `version_0/metrics.csv` (train rows every step, a val row every
    `val_every` steps, empty cells elsewhere) and `version_0/hparams.yaml`."""

    layout = "lightning_csv"
    columns = ("epoch", "step", "train_loss", "val_loss", "val_acc")
    val_every = 20

    def start(self) -> None:
        (self.run_dir / "version_0").mkdir(parents=True, exist_ok=True)
        (self.run_dir / "version_0" / "hparams.yaml").write_text(yaml.safe_dump(self.params), encoding="utf-8")
        self.csv = self.open("version_0/metrics.csv")
        self.csv.write(",".join(self.columns) + "\n")

    def log(self, step: int, metrics: dict[str, float]) -> None:
        epoch = step // 50
        self.csv.write(f"{epoch},{step},{metrics['loss']:.5f},,\n")
        if step % self.val_every == 0:
            self.csv.write(f"{epoch},{step},,{metrics['loss'] * 1.08:.5f},{min(0.99, 1 - metrics['loss'] / 3):.4f}\n")


class HfTrainerRun(RunWriter):
    """A Hugging Face Trainer output dir: `config.json`, HF's stdout dict lines in `train.log`, and
    `checkpoint-N/trainer_state.json` every `save_every` steps (the last two kept)."""

    layout = "hf_trainer"
    save_every = 10

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.json").write_text(json.dumps(self.params, indent=2), encoding="utf-8")
        self.text = self.open("train.log")
        self.history: list[dict[str, Any]] = []

    def log(self, step: int, metrics: dict[str, float]) -> None:
        entry = {"loss": round(metrics["loss"], 4), "learning_rate": metrics["lr"],
                 "epoch": round(step / self.total * 3, 2), "step": step}
        self.history.append(entry)
        shown = {k: v for k, v in entry.items() if k != "step"}
        self.text.write(repr(shown) + "\n")
        if step % self.save_every == 0:
            self.save(step)

    def save(self, step: int) -> None:
        checkpoint = self.run_dir / f"checkpoint-{step}"
        checkpoint.mkdir(exist_ok=True)
        state = {"global_step": step, "max_steps": self.total, "epoch": round(step / self.total * 3, 2),
                 "log_history": self.history, "logging_steps": 1, "save_steps": self.save_every}
        (checkpoint / "trainer_state.json").write_text(json.dumps(state, indent=2), encoding="utf-8")
        old = sorted(self.run_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[:-2]
        for path in old:
            for child in path.iterdir():
                child.unlink()
            path.rmdir()

    def crash(self) -> None:
        self.text.write(CRASH_TRACEBACK)
        self.close()


class MlflowRun(RunWriter):
    """MLflow's file store as `mlflow.log_metric` leaves it: `mlruns/0/<run id>/meta.yaml` (status 1
    RUNNING, then 3 FINISHED), `metrics/<key>` lines `<ms> <value> <step>`, `params/<key>` and
    `tags/mlflow.runName` (the last part of the directory named on the command line), in an `mlruns/`
    beside that directory."""

    layout = "mlflow"

    def start(self) -> None:
        name = self.run_dir.name
        # MLflow's own depth (mlruns/<experiment>/<run>) beside the named directory, within runs.max_depth
        self.run_root = self.run_dir.parent / "mlruns" / "0" / hashlib.md5(str(self.run_dir).encode()).hexdigest()
        for sub in ("metrics", "params", "tags"):
            (self.run_root / sub).mkdir(parents=True, exist_ok=True)
        experiment = self.run_dir.parent / "mlruns" / "0" / "meta.yaml"
        if not experiment.exists():
            experiment.write_text("experiment_id: '0'\nname: Default\nlifecycle_stage: active\n", encoding="utf-8")
        (self.run_root / "tags" / "mlflow.runName").write_text(name, encoding="utf-8")
        for key, value in self.params.items():
            (self.run_root / "params" / key).write_text(str(value), encoding="utf-8")
        self.started_ms = int(time.time() * 1000)
        self._meta(status=1)
        self.metric_files: dict[str, IO[str]] = {}

    def _meta(self, status: int, end_ms: int | None = None) -> None:
        meta = {"run_id": self.run_root.name, "experiment_id": "0", "status": status, "lifecycle_stage": "active",
                "start_time": self.started_ms, "end_time": end_ms, "run_name": self.run_dir.name}
        (self.run_root / "meta.yaml").write_text(yaml.safe_dump(meta), encoding="utf-8")

    def log(self, step: int, metrics: dict[str, float]) -> None:
        now_ms = int(time.time() * 1000)
        for key, value in metrics.items():
            handle = self.metric_files.get(key) or self.metric_files.setdefault(
                key, self.open(self.run_root / "metrics" / key))
            handle.write(f"{now_ms} {value} {step}\n")

    def end(self) -> None:
        self._meta(status=3, end_ms=int(time.time() * 1000))
        self.close()


LAYOUTS: dict[str, type[RunWriter]] = {cls.layout: cls for cls in (JsonlRun, LightningRun, HfTrainerRun, MlflowRun)}


def _now() -> float:
    return round(time.time(), 3)
