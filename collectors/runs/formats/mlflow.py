"""MLflow's file store: `mlruns/<experiment id>/<run id>/` with `meta.yaml`, `metrics/`, `params/`, `tags/`.

A directory holding `meta.yaml` and a `metrics/` directory is one run (its experiment's directory has a
meta.yaml but no metrics/). Each `metrics/<key>` file (a key with `/` lies in subdirectories) grows by
lines `<timestamp ms> <value> <step>` (old MLflow: no step, 0); it is the metric `<key>`. `params/<key>`
files hold one hyperparameter each; the run's name is `tags/mlflow.runName` (else meta.yaml's
`run_name`). meta.yaml's `status` (a name, or RunStatus's number: 1 RUNNING, 2 SCHEDULED, 3 FINISHED,
4 FAILED, 5 KILLED) is the run's status when it says the run ended: FINISHED is an end, FAILED and
KILLED a crash; it is re-read when MLflow rewrites it. MLflow 3.7+ defaults to a SQLite `mlflow.db`
instead of this store (see README, "Training runs": not read).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from collectors.runs.format_spec import FileKind, Listing, Match, RunFormat
from collectors.runs.formats.params_files import load_tree
from collectors.runs.parsed import LineReader, Parsed, SnapshotError, not_finite_reason
from collectors.runs.sources import LineSource, SnapshotSource, SourceSettings

META = "meta.yaml"
MAX_KEY_DEPTH = 4  # metrics/a/b/c/d
STATUS_NAMES = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
CRASHED = frozenset({"FAILED", "KILLED"})


def metric_name(path: str) -> str:
    """`metrics/train/loss` -> `train/loss`: the path below the run's metrics/ directory."""
    parts = path.split(os.sep)
    for i in range(len(parts) - 2, max(len(parts) - 2 - MAX_KEY_DEPTH, 0) - 1, -1):
        if parts[i] == "metrics" and os.path.isfile(os.sep.join([*parts[:i], META])):
            return "/".join(parts[i + 1:])
    return parts[-1]


class MetricFileReader(LineReader):
    """Lines `timestamp value [step]` of one metric file."""

    def __init__(self, name: str) -> None:
        self.metric = name

    def read(self, lines: Sequence[tuple[int, bytes]], mtime: float, parsed: Parsed) -> None:
        for no, raw in lines:
            fields = raw.split()
            if not fields:
                continue
            try:
                stamp, value = int(fields[0]), float(fields[1])
                step = int(fields[2]) if len(fields) > 2 else 0
            except (ValueError, IndexError):
                parsed.add_bad(no, f"not `timestamp value step`: {raw[:60].decode('utf-8', 'replace')!r}")
                continue
            if not math.isfinite(value):
                parsed.add_bad(no, not_finite_reason(self.metric, value))
                continue
            parsed.add_point(self.metric, step, stamp / 1000.0, value)
            parsed.records += 1
            parsed.progress.append((stamp / 1000.0, step))


def open_metric(path: str, settings: SourceSettings) -> LineSource:
    return LineSource(path, MetricFileReader(metric_name(path)), settings)


def status_of(meta: object) -> str | None:
    status = meta.get("status") if isinstance(meta, dict) else None
    if isinstance(status, int):
        return STATUS_NAMES.get(status)
    return status.upper() if isinstance(status, str) else None


def read_meta(data: bytes, mtime: float, parsed: Parsed) -> None:
    try:
        meta = load_tree(META, data)
    except ValueError as exc:
        raise SnapshotError(str(exc), 1) from None
    status = status_of(meta)
    if status == "FINISHED":
        parsed.add_marker("end", "MLflow status FINISHED (meta.yaml)", None, None)
    elif status in CRASHED:
        parsed.add_marker("crash", f"MLflow status {status} (meta.yaml)", None, None)
    if status is not None:
        parsed.texts["mlflow_status"] = status


def _files_below(directory: str, depth: int = 0) -> list[str]:
    found: list[str] = []
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return found
    for entry in entries:
        try:
            if entry.is_file():
                found.append(entry.path)
            elif entry.is_dir() and depth < MAX_KEY_DEPTH and not entry.name.startswith("."):
                found.extend(_files_below(entry.path, depth + 1))
        except OSError:
            continue
    return found


def _is_run(listing: Listing) -> bool:
    return META in listing.files and "metrics" in listing.dirs


def metric_files(listing: Listing) -> list[str]:
    return _files_below(listing.dirs["metrics"]) if _is_run(listing) else []


def _run_name(listing: Listing) -> str | None:
    try:
        with open(os.path.join(listing.path, "tags", "mlflow.runName"), "rb") as f:
            name = f.read(200).decode("utf-8", "replace").strip()
    except OSError:
        name = ""
    return name or None


def _recognise(listing: Listing) -> Match | None:
    if not _is_run(listing):
        return None
    params = _files_below(listing.dirs["params"]) if "params" in listing.dirs else []
    return Match(files={META_KIND.name: [listing.files[META]]}, claimed_dirs=frozenset({"metrics", "params", "tags"}),
                 hyperparameters=tuple(params), name=_run_name(listing))


def read_param(path: str, data: bytes) -> dict[str, str | int | float | bool]:
    parts = path.split(os.sep)
    key = "/".join(parts[parts.index("params") + 1:]) if "params" in parts else parts[-1]
    return {key: data.decode("utf-8", "replace").strip()}


META_KIND = FileKind("mlflow_meta", "snapshot", lambda run_dir, settings: SnapshotSource(run_dir, read_meta),
                     grouped=True)

FORMAT = RunFormat(
    name="mlflow",
    precedence=16,
    recognise=_recognise,
    is_candidate=lambda name: name == META,
    files=FileKind("mlflow_metric", "streamed", open_metric),
    companions=metric_files,
    file_depth=1 + MAX_KEY_DEPTH,
    candidate_dirs=frozenset({"metrics", "params", "tags"}),
    read_params=read_param,
    extra_kinds=(META_KIND,),  # meta.yaml, read whole when MLflow rewrites it: the run's status
)
