"""Stable-Baselines3's `progress.csv` (its logger's "csv" output): one run per directory holding it.

Recognised by its header naming `time/total_timesteps`, which is the step (SB3's x axis); every other
column is a metric under its own prefix (`rollout/ep_rew_mean`, `train/loss`, `time/fps`). Rows are
sparse (the first row has no `train/*` values) and SB3 rewrites the whole file with a wider header when
a key appears: read as any CSV (collectors/runs/formats/csv_table.py) with that step column. SB3
writes no end: a run found old, or whose writer exits, is `finished`.
"""

from __future__ import annotations

from collectors.runs.format_spec import FileKind, Listing, Match, RunFormat
from collectors.runs.formats.csv_table import CsvReader
from collectors.runs.sources import LineSource, SourceSettings

PROGRESS = "progress.csv"
STEP_COLUMN = "time/total_timesteps"
NAME = "sb3"


def looks_like_sb3(head: str) -> bool:
    first = head.split("\n", 1)[0]
    return STEP_COLUMN in first.split(",") or f"{STEP_COLUMN}\r" in first


def progress_files(listing: Listing) -> list[str]:
    return [p for p, kind in listing.sniffed.items() if kind == NAME]


def open_progress(path: str, settings: SourceSettings) -> LineSource:
    return LineSource(path, CsvReader(step_keys=(STEP_COLUMN,)), settings)


def _recognise(listing: Listing) -> Match | None:
    return Match(files={"csv": []}) if progress_files(listing) else None  # not read a second time as a plain CSV


FORMAT = RunFormat(
    name=NAME,
    precedence=35,  # before csv
    recognise=_recognise,
    is_candidate=lambda name: name == PROGRESS,
    files=FileKind("sb3_progress", "streamed", open_progress),
    companions=progress_files,
    sniff_names=lambda name: name == PROGRESS,
    sniff=looks_like_sb3,
    records_end=False,
)
