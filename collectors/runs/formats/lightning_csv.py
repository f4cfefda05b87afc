"""PyTorch Lightning's CSVLogger: a `version_N/` dir holding `metrics.csv` (and `hparams.yaml`) is one run.

Its metrics.csv is read as any CSV (collectors/runs/formats/csv_table.py: sparse rows, the header
rewritten when a new key appears); this format only names the run `lightning_csv` and records its
hyperparameters file.
"""

from __future__ import annotations

import re

from collectors.runs.format_spec import Listing, Match, RunFormat
from collectors.runs.formats.params_files import read_tree_params

VERSION_DIR = re.compile(r"version_\d+")
HPARAMS = "hparams.yaml"


def _recognise(listing: Listing) -> Match | None:
    if not (VERSION_DIR.fullmatch(listing.name) and "metrics.csv" in listing.files):
        return None
    return Match(hyperparameters=tuple(listing.named(lambda name: name == HPARAMS)))


FORMAT = RunFormat(
    name="lightning_csv",
    precedence=20,  # before csv: its metrics.csv alone would make a plain csv run
    recognise=_recognise,
    is_candidate=lambda name: name in ("metrics.csv", HPARAMS),
    records_end=False,  # CSVLogger writes no end; it opens the file per write, so its writer is rarely seen
    read_params=read_tree_params,
)
