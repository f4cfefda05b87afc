"""DVCLive's output directory (`dvclive/` by default): `plots/metrics/**/*.tsv`, `metrics.json`, `params.yaml`.

A directory holding `plots/metrics/` (or named `dvclive` and holding `metrics.json`) is one run. Each
`plots/metrics/<name>.tsv` grows by lines `[timestamp\t]step\t<value>` under a header naming them; it is
the metric `<name>`, nested names kept (`plots/metrics/test/acc.tsv` -> `test/acc`). `metrics.json` (the
latest values, rewritten whole) repeats the TSVs' last values and is not read for points; `params.yaml`
(in the run dir or the project dir above it) is the hyperparameters. DVCLive writes no end marker.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from collectors.runs.format_spec import FileKind, Listing, Match, RunFormat
from collectors.runs.formats.params_files import read_tree_params
from collectors.runs.parsed import LineReader, Parsed, not_finite_reason
from collectors.runs.sources import LineSource, SourceSettings

MAX_NAME_DEPTH = 4


def metric_name(path: str) -> str:
    parts = path[: -len(".tsv")].split(os.sep)
    for i in range(len(parts) - 2, 0, -1):
        if parts[i] == "metrics" and parts[i - 1] == "plots":
            return "/".join(parts[i + 1:])
    return parts[-1]


class TsvReader(LineReader):
    def __init__(self, name: str) -> None:
        self.metric = name
        self.columns: dict[str, int] | None = None

    def reset(self) -> None:
        self.columns = None

    def read(self, lines: Sequence[tuple[int, bytes]], mtime: float, parsed: Parsed) -> None:
        for no, raw in lines:
            cells = raw.decode("utf-8", "replace").rstrip("\r").split("\t")
            if not raw.strip():
                continue
            if self.columns is None or "step" in cells:
                self.columns = {name.strip(): i for i, name in enumerate(cells)}
                continue
            step_at, value_at = self.columns.get("step"), len(self.columns) - 1
            stamp_at = self.columns.get("timestamp")
            try:
                value = float(cells[value_at])
                step = int(float(cells[step_at])) if step_at is not None else parsed.records
                when = float(cells[stamp_at]) / 1000.0 if stamp_at is not None else mtime
            except (ValueError, IndexError):
                parsed.add_bad(no, f"{len(cells)} cells, not numbers under {list(self.columns)}")
                continue
            if not math.isfinite(value):
                parsed.add_bad(no, not_finite_reason(self.metric, value))
                continue
            parsed.add_point(self.metric, step, when, value)
            parsed.records += 1
            parsed.progress.append((when, step))


def open_tsv(path: str, settings: SourceSettings) -> LineSource:
    return LineSource(path, TsvReader(metric_name(path)), settings)


def _plots_metrics(listing: Listing) -> str | None:
    plots = listing.dirs.get("plots")
    path = os.path.join(plots, "metrics") if plots else None
    return path if path and os.path.isdir(path) else None


def tsv_files(listing: Listing) -> list[str]:
    top = _plots_metrics(listing)
    found: list[str] = []
    stack = [(top, 0)] if top else []
    while stack:
        directory, depth = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.name.endswith(".tsv") and entry.is_file():
                    found.append(entry.path)
                elif depth < MAX_NAME_DEPTH and entry.is_dir() and not entry.name.startswith("."):
                    stack.append((entry.path, depth + 1))
            except OSError:
                continue
    return sorted(found)


def _recognise(listing: Listing) -> Match | None:
    if _plots_metrics(listing) is None and not (listing.name == "dvclive" and "metrics.json" in listing.files):
        return None
    params = listing.named(lambda name: name == "params.yaml")
    above = os.path.join(os.path.dirname(listing.path), "params.yaml")
    if not params and not listing.is_root and os.path.isfile(above):
        params = [above]
    return Match(claimed_dirs=frozenset({"plots", "artifacts"}), hyperparameters=tuple(params))


FORMAT = RunFormat(
    name="dvclive",
    precedence=25,
    recognise=_recognise,
    is_candidate=lambda name: name in ("metrics.json", "params.yaml") or name.endswith(".tsv"),
    files=FileKind("dvclive_tsv", "streamed", open_tsv),
    companions=tsv_files,
    file_depth=3 + MAX_NAME_DEPTH,
    records_end=False,
    read_params=read_tree_params,
)
