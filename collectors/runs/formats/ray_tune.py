"""Ray Tune / RLlib trial directories: `result.json` (one JSON object per reported result), `progress.csv`
(the same results as CSV), `params.json` (the trial's config), `error.txt` when the trial failed.

A directory holding `result.json` beside `params.json` or `progress.csv` is one run (one trial).
`result.json` is read (its progress.csv would repeat it and is left out): every number of a result is a
metric, nested results flattened with `/` as Ray's progress.csv names them (`info/learner/.../total_loss`;
`env_runners/episode_return_mean`); `training_iteration` is the step, `timestamp` the time; `config`,
ids, host names and lists are not metrics. A result with `done: true` ends the run; `error.txt` (its
traceback) crashes it. Without result.json, progress.csv is read as a CSV with the same step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from collectors.runs.format_spec import FileKind, Listing, Match, RunFormat
from collectors.runs.formats.csv_table import CsvReader
from collectors.runs.formats.jsonl import load_records
from collectors.runs.formats.params_files import read_tree_params
from collectors.runs.formats.text_log import text_log_source, text_logs
from collectors.runs.parsed import LineReader, Parsed, as_timestamp, not_finite_reason
from collectors.runs.sources import LineSource, SourceSettings

RESULT = "result.json"
STEP = "training_iteration"
NOT_METRICS = frozenset({STEP, "timestamp", "config", "done", "trial_id", "experiment_id", "date", "hostname",
                         "node_ip", "pid", "experiment_tag", "should_checkpoint", "checkpoint_dir_name"})
MAX_DEPTH = 6


def _numbers(record: dict[str, Any], prefix: str, out: dict[str, float], depth: int = 0) -> None:
    for key, value in record.items():
        if not prefix and key in NOT_METRICS:
            continue
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, dict):
            if depth < MAX_DEPTH:
                _numbers(value, name, out, depth + 1)
        elif type(value) in (int, float):
            out[name] = float(value)


class ResultReader(LineReader):
    def __init__(self) -> None:
        self.ordinal = 0

    def reset(self) -> None:
        self.ordinal = 0

    def read(self, lines: Sequence[tuple[int, bytes]], mtime: float, parsed: Parsed) -> None:
        records, numbers, _exact = load_records(lines, parsed, fast=False)  # json: exact big ints, few lines
        for record, no in zip(records, numbers, strict=True):
            step_value = record.get(STEP)
            step = int(step_value) if type(step_value) in (int, float) and math.isfinite(step_value) else self.ordinal
            self.ordinal += 1
            stamp = record.get("timestamp")
            when = (as_timestamp(stamp) if type(stamp) in (int, float) else None) or mtime
            values: dict[str, float] = {}
            _numbers(record, "", values)
            bad = next((k for k, v in values.items() if not math.isfinite(v)), None)
            if bad is not None:
                parsed.add_bad(no, not_finite_reason(bad, values[bad]))
                values = {k: v for k, v in values.items() if math.isfinite(v)}
            for name, value in values.items():
                parsed.add_point(name, step, when, value)
            parsed.records += 1
            parsed.progress.append((when, step))
            if record.get("done") is True:
                parsed.add_marker("end", "done: true in result.json", no, step)


def open_result(path: str, settings: SourceSettings) -> LineSource:
    return LineSource(path, ResultReader(), settings)


def open_progress(path: str, settings: SourceSettings) -> LineSource:
    return LineSource(path, CsvReader(step_keys=(STEP,)), settings)


def _is_trial(listing: Listing) -> bool:
    files = listing.files
    return ("params.json" in files and (RESULT in files or "progress.csv" in files)) or (
        RESULT in files and "progress.csv" in files)


def result_files(listing: Listing) -> list[str]:
    return [listing.files[RESULT]] if RESULT in listing.files and _is_trial(listing) else []


def _recognise(listing: Listing) -> Match | None:
    if not _is_trial(listing):
        return None
    progress = [] if RESULT in listing.files else listing.named(lambda name: name == "progress.csv")
    errors = listing.named(lambda name: name == "error.txt")
    return Match(files={"csv": [], PROGRESS.name: progress, "text": [*text_logs(listing), *errors]},
                 hyperparameters=tuple(listing.named(lambda name: name == "params.json")))


PROGRESS = FileKind("ray_progress", "streamed", open_progress)

FORMAT = RunFormat(
    name="ray_tune",
    precedence=12,
    recognise=_recognise,
    is_candidate=lambda name: name in (RESULT, "params.json", "error.txt"),
    files=FileKind("ray_result", "streamed", open_result),
    companions=result_files,
    reads=(text_log_source(metrics=False),),  # error.txt and logs beside: their tracebacks
    records_end=False,  # `done` is written by a trial that finished; a stopped or killed one writes nothing
    read_params=read_tree_params,
    extra_kinds=(PROGRESS,),  # progress.csv of a trial without result.json
)
