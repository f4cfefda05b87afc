"""Derive tests/data/real/expected.json from the real artefacts, independently of labwall.

Plain Python 3.11, standard library only (json, csv, struct, re). It never imports labwall.
Run from the repository root:

    python3 tests/data/real/compute_expected.py            # rewrite expected.json
    python3 tests/data/real/compute_expected.py --check    # exit 1 if expected.json is stale

Artefacts under tests/data/real/ go to "artefacts"; the ones kept uncommitted under shared/real/
(TensorBoard event files and the W&B run, which came from `fetch` snapshots; see SOURCES.md) go to
"shared_artefacts" when that folder exists (without it, the section already in expected.json is
kept). Keys are paths relative to those two roots.

Metric naming (the rules SOURCES.md states):
  hf_trainer_state  every numeric log_history key except "epoch" and "step", as written
  lightning_csv     every column except "epoch" and "step"; a point is a non-empty cell
  sb3_progress_csv  every column except "time/total_timesteps" (the step axis)
  keras_csv         every column except "epoch" (the step axis)
  dvclive           each plots/metrics/**/*.tsv, named by its path below plots/metrics without .tsv
  mlflow_file_store each metrics/<key> file, named <key>; lines are "timestamp value step"
  wandb_run_dir     numeric wandb-summary.json keys except _step/_runtime/_timestamp/_wandb
  tensorboard       every tag carrying a scalar (simple_value or scalar float tensor), as written
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
SHARED = REPO / "shared" / "real"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _line_endings(raw: bytes) -> str:
    crlf = raw.count(b"\r\n")
    lf = raw.count(b"\n") - crlf
    return "crlf" if crlf and not lf else ("lf" if lf and not crlf else ("mixed" if crlf else "none"))


def _as_int(step: float | None) -> float | int | None:
    return int(step) if step is not None and step.is_integer() else step


def _series(points: list[tuple[float, float]]) -> dict:
    step, value = points[-1]
    out = {"points": len(points), "last_step": step, "last_value": value}
    if any(isinstance(v, float) and math.isnan(v) for _, v in points):
        out["has_nan"] = True
    return out


def _dup_steps(steps: list) -> list:
    seen, dups = set(), []
    for s in steps:
        if s in seen and s not in dups:
            dups.append(s)
        seen.add(s)
    return dups


# ---------------------------------------------------------------- HF Trainer trainer_state.json
def hf_trainer_state(path: Path) -> dict:
    raw = path.read_bytes()
    state = json.loads(raw)
    series: dict[str, list] = {}
    eval_only = summary = 0
    for entry in state.get("log_history", []):
        keys = set(entry) - {"epoch", "step"}
        if keys and all(k.startswith("eval_") for k in keys):
            eval_only += 1
        if "train_runtime" in entry:
            summary += 1
        for key, value in entry.items():
            if key in ("epoch", "step") or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            series.setdefault(key, []).append((entry.get("step"), value))
    max_steps = state.get("max_steps")
    finished = bool(max_steps) and state.get("global_step", 0) >= max_steps
    fields = sorted(state)
    return {
        "format": "hf_trainer_state",
        "metrics": {k: _series(v) for k, v in sorted(series.items())},
        "total_steps": max_steps,
        "global_step": state.get("global_step"),
        "ended": True,
        "finished": finished,
        "notes": {
            "log_entries": len(state.get("log_history", [])),
            "eval_only_entries": eval_only,
            "train_summary_entries": summary,
            "has_grad_norm": "grad_norm" in series,
            "has_stateful_callbacks": "stateful_callbacks" in state,
            "has_best_global_step": "best_global_step" in state,
            "has_logging_steps": "logging_steps" in state,
            "top_level_fields": fields,
            "line_endings": _line_endings(raw),
        },
    }


# ---------------------------------------------------------------- CSV families
def _csv_rows(path: Path) -> tuple[list[str], list[dict], bytes]:
    raw = path.read_bytes()
    reader = csv.DictReader(io.StringIO(raw.decode("utf-8"), newline=""))
    return list(reader.fieldnames or []), list(reader), raw


def _csv_metrics(header, rows, step_col, skip) -> dict:
    series: dict[str, list] = {}
    for row in rows:
        step = _num(row.get(step_col) or "")
        for col in header:
            if col in skip or col == step_col:
                continue
            value = _num(row.get(col) or "")
            if value is not None:
                series.setdefault(col, []).append((_as_int(step), value))
    return {k: _series(v) for k, v in series.items()}


def _csv_result(fmt, path, step_col, skip, extra=None) -> dict:
    header, rows, raw = _csv_rows(path)
    steps = [_num(r.get(step_col) or "") for r in rows]
    empty_cells = sum(1 for r in rows for c in header if (r.get(c) or "") == "")
    out = {
        "format": fmt,
        "metrics": _csv_metrics(header, rows, step_col, skip),
        "total_steps": None,
        "ended": True,
        "finished": None,
        "notes": {
            "rows": len(rows),
            "columns": header,
            "step_column": step_col,
            "empty_cells": empty_cells,
            "rows_without_step": sum(1 for s in steps if s is None),
            "duplicated_steps": [_as_int(s) for s in _dup_steps([s for s in steps if s is not None])],
            "line_endings": _line_endings(raw),
        },
    }
    if extra:
        out["notes"].update(extra(path))
    return out


def _hparams(path: Path) -> dict:
    hp = path.parent / "hparams.yaml"
    if not hp.exists():
        return {"hparams_yaml": False}
    text = hp.read_text()
    top = [ln.split(":", 1)[0] for ln in text.splitlines() if ln and not ln[0].isspace() and ":" in ln]
    return {"hparams_yaml": True, "hparams_top_level_keys": top, "hparams_python_tags": "!!python/" in text}


def lightning_csv(path: Path) -> dict:
    return _csv_result("lightning_csv", path, "step", {"epoch"}, _hparams)


def sb3_progress_csv(path: Path) -> dict:
    return _csv_result("sb3_progress_csv", path, "time/total_timesteps", set())


def keras_csv(path: Path) -> dict:
    return _csv_result("keras_csv", path, "epoch", set())


# ---------------------------------------------------------------- DVCLive
def dvclive(root: Path) -> dict:
    plots = root / "dvclive" / "plots" / "metrics"
    metrics = {}
    for tsv in sorted(plots.rglob("*.tsv")):
        name = tsv.relative_to(plots).with_suffix("").as_posix()
        rows = list(csv.DictReader(io.StringIO(tsv.read_text()), delimiter="\t"))
        col = next(c for c in rows[0] if c not in ("step", "timestamp"))
        metrics[name] = _series([(int(r["step"]), float(r[col])) for r in rows])
    summary = json.loads((root / "dvclive" / "metrics.json").read_text())
    loss_steps = [int(r["step"]) for r in csv.DictReader(io.StringIO((plots / "loss.tsv").read_text()), delimiter="\t")]
    gaps = [s for s in range(loss_steps[0], loss_steps[-1] + 1) if s not in set(loss_steps)]
    return {
        "format": "dvclive",
        "metrics": metrics,
        "total_steps": None,
        "ended": True,
        "finished": None,
        "notes": {"metrics_json": summary, "metrics_json_step": summary.get("step"),
                  "loss_tsv_missing_steps": gaps,
                  "params_yaml": (root / "dvclive" / "params.yaml").exists()},
    }


# ---------------------------------------------------------------- MLflow file store
MLFLOW_STATUS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}


def mlflow_run(run: Path) -> dict:
    meta = {}
    for line in (run / "meta.yaml").read_text(encoding="utf-8").splitlines():
        if ":" in line and not line.startswith(" "):
            key, value = line.split(":", 1)
            meta[key.strip()] = value.strip().strip("'")
    metrics = {}
    for f in sorted((run / "metrics").iterdir()):
        pts = []
        for line in f.read_text().splitlines():
            _timestamp, value, step = line.split()
            pts.append((int(step), float(value)))
        metrics[f.name] = _series(pts)
    raw_status = meta.get("status", "")
    status = MLFLOW_STATUS.get(int(raw_status), raw_status) if raw_status.isdigit() else raw_status
    return {
        "format": "mlflow_file_store",
        "metrics": metrics,
        "total_steps": None,
        "ended": True,
        "finished": status == "FINISHED",
        "notes": {
            "run_id": meta.get("run_id"),
            "run_name_tag": (run / "tags" / "mlflow.runName").read_text(),
            "meta_status_raw": raw_status,
            "meta_status": status,
            "params": sorted(p.name for p in (run / "params").iterdir()),
            "tags": sorted(p.name for p in (run / "tags").iterdir()),
            "experiment_meta_yaml_present": (run.parent / "meta.yaml").exists(),
        },
    }


# ---------------------------------------------------------------- W&B run dir
def wandb_run(files: Path) -> dict:
    summary = json.loads((files / "wandb-summary.json").read_text())
    metrics = {}
    for key, value in summary.items():
        if key in ("_step", "_runtime", "_timestamp", "_wandb") or isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            metrics[key] = {"points": 1, "last_step": summary.get("_step"), "last_value": value}
    log = (files / "output.log").read_bytes().decode("utf-8")
    return {
        "format": "wandb_run_dir",
        "metrics": dict(sorted(metrics.items())),
        "total_steps": None,
        "ended": True,
        "finished": None,
        "notes": {
            "summary_step": summary.get("_step"),
            "summary_non_numeric_keys": sorted(k for k, v in summary.items() if not isinstance(v, (int, float))),
            "output_log_lines": log.count("\n"),
            "output_log_ansi_sequences": len(ANSI.findall(log)),
            "output_log_keras_epoch_lines": len(re.findall(r"^Epoch \d+/\d+$", log, re.M)),
            "config_yaml": (files / "config.yaml").exists(),
            "metadata_keys": sorted(json.loads((files / "wandb-metadata.json").read_text())),
        },
    }


# ---------------------------------------------------------------- TensorBoard event files
def _varint(b: bytes, i: int) -> tuple[int, int]:
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def _fields(b: bytes):
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        elif wt == 2:
            n, i = _varint(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise ValueError(f"wire type {wt}")
        yield num, v


def _tensor_scalar(t: bytes) -> float | None:
    dtype, content, floats = None, None, []
    for num, v in _fields(t):
        if num == 1:
            dtype = v
        elif num == 4:
            content = v
        elif num == 5:
            floats.append(struct.unpack("<f", v)[0] if isinstance(v, bytes) and len(v) == 4 else None)
    if dtype == 1 and content and len(content) == 4:
        return struct.unpack("<f", content)[0]
    if dtype == 1 and len(floats) == 1:
        return floats[0]
    return None


def tensorboard(path: Path) -> dict:
    data = path.read_bytes()
    i, records, series, others, versions = 0, 0, {}, set(), []
    while i + 12 <= len(data):
        n = struct.unpack("<Q", data[i:i + 8])[0]
        rec = data[i + 12:i + 12 + n]
        i += 12 + n + 4
        records += 1
        step, values = 0, []
        for num, v in _fields(rec):
            if num == 2:
                step = v
            elif num == 3:
                versions.append(v.decode())
            elif num == 5:
                values = [val for f, val in _fields(v) if f == 1]
        for val in values:
            tag, simple, tensor, plugin = None, None, None, None
            for f, x in _fields(val):
                if f == 1:
                    tag = x.decode()
                elif f == 2:
                    simple = struct.unpack("<f", x)[0]
                elif f == 8:
                    tensor = _tensor_scalar(x)
                elif f == 9:
                    for f4, y in _fields(x):
                        if f4 == 1:
                            plugin = next((z.decode() for f5, z in _fields(y) if f5 == 1), None)
            value = simple if simple is not None else tensor
            if value is None:
                others.add(f"{tag} ({plugin or 'non-scalar'})")
            else:
                series.setdefault(tag, []).append((step, value))
    return {
        "format": "tensorboard",
        "metrics": {k: _series(v) for k, v in sorted(series.items())},
        "total_steps": None,
        "ended": True,
        "finished": None,
        "notes": {"records": records, "file_version": versions, "non_scalar_summaries": sorted(others),
                  "trailing_bytes": len(data) - i},
    }


# ---------------------------------------------------------------- manifest
COMMITTED = {
    "hf/Francis-xsc_BERT_Weibo_Rumor/trainer_state.json": hf_trainer_state,
    "hf/ShashankBommana_DNABERT-2/trainer_state.json": hf_trainer_state,
    "hf/O5-7_chat_glm2_in4_LIL_prefix/checkpoint-1000/trainer_state.json": hf_trainer_state,
    "hf/NijatZeynalov_mT5-based-azerbaijani-news-summarize/trainer_state.json": hf_trainer_state,
    "hf/aigoncharov_trainer_state_viz/trainer_state.json": hf_trainer_state,
    "hf/CoralReefFish_whisper-tiny-nbaiLab/trainer_state.json": hf_trainer_state,
    "hf/Dheena731_tinyLlama-finetune/trainer_state.json": hf_trainer_state,
    "hf/P4P4N1CK_whisper-large-v2-japanese-5k-steps/trainer_state.json": hf_trainer_state,
    "lightning/Arshya-Guru_deepmind-research/lightning_logs/version_0/metrics.csv": lightning_csv,
    "lightning/Driemann_ml-aos/lightning_logs/version_0/metrics.csv": lightning_csv,
    "lightning/10sajan10_CS6994FinalProject/lightning_logs/version_0/metrics.csv": lightning_csv,
    "lightning/0Xero7_slm_training/lightning_logs/version_0/metrics.csv": lightning_csv,
    "lightning/AvichalDwivedi2205_dendritik-liquid/lightning_logs/version_0/metrics.csv": lightning_csv,
    "sb3/reddyn12_Sb3Test/logs/progress.csv": sb3_progress_csv,
    "sb3/TobiasLudwig02_RLFlappyBird/logs/progress.csv": sb3_progress_csv,
    "keras/Lidbey_AI4Mars/model_history_log.csv": keras_csv,
    "keras/Aitzaz-Saleem_Detection-of-Tomato-Leaf-Diseases-Using-CNN/training_log.csv": keras_csv,
    "dvclive/dberenbaum_dvclive-fabric": dvclive,
    "mlflow/YevhenFomichov_firstpub/mlruns/0/a70cf06358c34921a6cff81efac0cb21": mlflow_run,
}
SHARED_ARTEFACTS = {
    "tensorboard/Abdul-AA_Text-Generation-With-LSTM/lightning_logs/version_0/"
    "events.out.tfevents.1716735746.99c8c45923de.3769.0": tensorboard,
    "tensorboard/AtomScott_FractalDB/lightning_logs/version_0/"
    "events.out.tfevents.1609169139.e8fc262d1b07.21087.0": tensorboard,
    "tensorboard/DCBIA-OrthoLab_ShapeAXI/lightning_logs/version_0/"
    "events.out.tfevents.1721830887.medusa.ia.unc.edu.2411601.0": tensorboard,
    "wandb/asyuri26_trash-classification/wandb/run-20241028_143626-cgh31nxi/files": wandb_run,
}


def compute() -> dict:
    out = {
        "generated_by": "tests/data/real/compute_expected.py",
        "artefacts": {rel: fn(HERE / rel) for rel, fn in COMMITTED.items()},
    }
    if SHARED.exists():
        out["shared_artefacts"] = {rel: fn(SHARED / rel) for rel, fn in SHARED_ARTEFACTS.items()
                                   if (SHARED / rel).exists()}
    return out


def main() -> int:
    target = HERE / "expected.json"
    result = compute()
    if "shared_artefacts" not in result and target.exists():
        # shared/real is not in every checkout: keep the values derived where it was.
        previous = json.loads(target.read_text()).get("shared_artefacts")
        if previous is not None:
            result["shared_artefacts"] = previous
    text = json.dumps(result, indent=2, sort_keys=False) + "\n"
    if "--check" in sys.argv:
        if not target.exists() or target.read_text() != text:
            print("expected.json is stale: rerun compute_expected.py")
            return 1
        return 0
    target.write_text(text)
    print(f"wrote {target.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
