"""Weights & Biases local run directories: `wandb/run-<date>_<time>-<id>/` and `offline-run-...`.

One run per such directory (`wandb/latest-run`, a symlink to the newest, is skipped, never a second run).
Read from its `files/`:
- `wandb-summary.json`: the latest value of each key, rewritten whole as the run goes; every numeric
  top-level key is a point at the summary's `_step` (time `_timestamp`), so the history labwall shows is
  the values seen at each rewrite (W&B's full history is only in the binary `run-<id>.wandb`, not read:
  README, "Training runs"); `_runtime`, `_step`, `_timestamp`, `_wandb` and non-numbers are not metrics;
- `wandb-metadata.json`: host, program, start time and GPU, as text fields;
- `config.yaml`: the hyperparameters (`key: {value: ...}`; `_wandb` left out);
- `output.log`: the captured stdout, read by the text rules for crash markers (a traceback, CUDA OOM).
W&B's plain files record no end: a writer (the wandb service holding `run-<id>.wandb`) that exits is the
end; a killed offline run reads the same (its status is only in the binary file).
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any

from collectors.runs.format_spec import FileKind, Listing, Match, RunFormat
from collectors.runs.formats.params_files import load_tree
from collectors.runs.formats.text_log import text_log_source
from collectors.runs.parsed import (
    ParamValue,
    Parsed,
    SnapshotError,
    as_timestamp,
    flatten_params,
    integral_step,
    not_finite_reason,
)
from collectors.runs.sources import SnapshotSource

RUN_DIR = re.compile(r"(?:offline-)?run-\d{8}_\d{6}-[A-Za-z0-9]+")
SUMMARY, METADATA, CONFIG, OUTPUT = "wandb-summary.json", "wandb-metadata.json", "config.yaml", "output.log"
INTERNAL = frozenset({"_step", "_runtime", "_timestamp", "_wandb"})
METADATA_TEXTS = {"host": "host", "program": "program", "startedAt": "started", "gpu": "gpu",
                  "gpu_count": "gpu_count", "python": "python", "codePath": "code_path"}


def read_files(data: bytes, mtime: float, parsed: Parsed) -> None:
    """wandb-summary.json (points at `_step`) or wandb-metadata.json (text fields), told apart by content."""
    try:
        tree = json.loads(data)
    except UnicodeDecodeError as exc:
        raise SnapshotError(f"not UTF-8 text (byte {exc.start})", 1) from None
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"invalid JSON: {exc.msg} at line {exc.lineno}", exc.lineno) from None
    if not isinstance(tree, dict):
        raise SnapshotError("not a JSON object", 1)
    if "_step" not in tree and ("startedAt" in tree or "program" in tree or "host" in tree):
        for key, text in METADATA_TEXTS.items():
            if tree.get(key) not in (None, ""):
                parsed.texts[text] = str(tree[key])
        return
    step = integral_step(tree.get("_step"))
    if step is None:
        step = 0
    stamp = tree.get("_timestamp")
    when = (as_timestamp(stamp) if type(stamp) in (int, float) else None) or mtime
    found = False
    for key, value in tree.items():
        if key in INTERNAL or type(value) not in (int, float):
            continue
        number = float(value)
        if not math.isfinite(number):
            parsed.add_bad(1, f"{not_finite_reason(key, number)} in {SUMMARY}")
            continue
        parsed.add_point(key, step, when, number)
        found = True
    if found:
        parsed.records += 1
        parsed.progress.append((when, step))


def read_config(path: str, data: bytes) -> dict[str, ParamValue]:
    tree = load_tree(path, data)
    if not isinstance(tree, dict):
        return {}
    plain: dict[str, Any] = {}
    for key, entry in tree.items():
        if key == "_wandb" or str(key).startswith("wandb_version"):
            continue
        plain[key] = entry.get("value") if isinstance(entry, dict) and "value" in entry else entry
    return flatten_params(plain)


def _files(listing: Listing, *names: str) -> list[str]:
    directory = listing.dirs.get("files")
    if directory is None:
        return []
    return [p for p in (os.path.join(directory, n) for n in names) if os.path.isfile(p)]


def _recognise(listing: Listing) -> Match | None:
    if not (RUN_DIR.fullmatch(listing.name) and "files" in listing.dirs):
        return None
    return Match(files={FILES.name: _files(listing, METADATA, SUMMARY), "text": _files(listing, OUTPUT)},
                 claimed_dirs=frozenset({"files", "logs", "tmp"}), hyperparameters=tuple(_files(listing, CONFIG)))


FILES = FileKind("wandb_files", "snapshot", lambda run_dir, settings: SnapshotSource(run_dir, read_files),
                 grouped=True)


def _never_companions(listing: Listing) -> list[str]:
    return []


FORMAT = RunFormat(
    name="wandb",
    precedence=11,
    recognise=_recognise,
    is_candidate=lambda name: name in (SUMMARY, METADATA, CONFIG, OUTPUT) or name.endswith(".wandb"),
    files=FILES,
    companions=_never_companions,  # only ever listed by a wandb run's Match
    reads=(text_log_source(metrics=False),),  # output.log: its tracebacks and crash lines
    file_depth=1,
    records_end=False,
    alias_links=frozenset({"latest-run"}),
    read_params=read_config,
)

