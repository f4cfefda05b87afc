"""CSV with a header line: Lightning's CSVLogger `metrics.csv`, Keras' CSVLogger and the like.

The first non-empty line is the header. Rows may be sparse (Lightning writes train and val keys on
different rows, leaving the other cells empty). `step` (else global_step, iteration, epoch) gives
the step, else the row's position; `time`/`timestamp`/`wall_time` a Unix time. Cells are converted
to numbers with pandas (`to_numeric`) a batch at a time; `nan`/`inf` cells are missing values (as
pandas and Keras write them); a column that never held a number is a text field. Bad rows: more or
fewer cells than the header, a non-numeric cell in a numeric column, the header line repeated,
non-UTF-8. A header line with new columns further down is followed from there on. When the writer
rewrites the file with a new header (Lightning) the tailer reports a reset and the reader starts
over with the new header (points are merged by step, not duplicated).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from collectors.runs.format_spec import FileKind, Listing, Match, RunFormat
from collectors.runs.parsed import STEP_KEYS, TIME_KEYS, TOTAL_KEYS, LineReader, Parsed
from collectors.runs.sources import LineSource

CSV_STEP_KEYS = (*STEP_KEYS, "epoch")
CSV_HEADER = re.compile(r"^[A-Za-z_][\w ./-]*(,[A-Za-z_][\w ./-]*)+\r?$")
STEP_COLUMN = re.compile(r"(^|,)(epoch|step)(,|\r?$)")


def _names(fields: list[str]) -> list[str]:
    return [f.strip().lstrip("\ufeff").strip() for f in fields]


def _looks_like_header(fields: list[str]) -> bool:
    for field in fields:
        cell = field.strip()
        if not cell:
            return False
        try:
            float(cell)
            return False
        except ValueError:
            continue
    return True


class CsvReader(LineReader):
    def __init__(self, step_keys: tuple[str, ...] = CSV_STEP_KEYS) -> None:
        self.step_keys = step_keys
        self.header: list[str] | None = None
        self.ordinal = 0
        self.numeric: set[str] = set()  # columns that have held a number

    def reset(self) -> None:
        self.header = None
        self.ordinal = 0

    def read(self, lines: Sequence[tuple[int, bytes]], mtime: float, parsed: Parsed) -> None:
        rows: list[list[str]] = []
        numbers: list[int] = []
        for no, raw in lines:
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                parsed.add_bad(no, f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at column {exc.start + 1})")
                continue
            try:
                fields = next(csv.reader([text]))
            except csv.Error as exc:
                parsed.add_bad(no, f"invalid CSV: {exc}")
                continue
            if self.header is None:
                self.header = _names(fields)
                continue
            if _looks_like_header(fields):
                names = _names(fields)
                if names == self.header:
                    parsed.add_bad(no, "the header line again")
                    continue
                if set(names) & set(self.header):  # a new header (a new column appeared): rows below follow it
                    if rows:
                        self._rows(rows, numbers, mtime, parsed)
                        rows, numbers = [], []
                    self.header = names
                    continue
            if len(fields) != len(self.header):
                parsed.add_bad(no, f"{len(fields)} values for {len(self.header)} columns")
                continue
            rows.append(fields)
            numbers.append(no)
        if rows and self.header:
            self._rows(rows, numbers, mtime, parsed)

    def _rows(self, rows: list[list[str]], numbers: list[int], mtime: float, parsed: Parsed) -> None:
        assert self.header is not None
        n = len(rows)
        table = pd.DataFrame(rows, columns=pd.Index(range(len(self.header))), dtype=object)
        cells = {name: table[i].str.strip() for i, name in enumerate(self.header)}
        values: dict[str, np.ndarray] = {}
        empty: dict[str, np.ndarray] = {}
        bad: dict[int, str] = {}
        for name, column in cells.items():
            blank = (column == "").to_numpy()
            converted = pd.to_numeric(column.where(~blank), errors="coerce").to_numpy(np.float64, na_value=np.nan)
            literal_nan = column.str.lower().isin(["nan", "inf", "-inf", "+inf", "infinity", "-infinity"]).to_numpy()
            failed = np.isnan(converted) & ~blank & ~literal_nan
            if blank.all():
                continue
            if failed[~blank].all() and name not in self.numeric:
                texts = column[~blank]
                if len(texts):
                    parsed.texts[name] = str(texts.iloc[-1])
                continue
            self.numeric.add(name)
            for i in np.flatnonzero(failed).tolist():
                bad.setdefault(i, f"{name!r} is not a number: {rows[i][self.header.index(name)][:40]!r}")
            values[name] = converted  # nan / inf cells are how pandas and Keras write a missing value
            empty[name] = blank | failed | ~np.isfinite(converted)
        good = np.ones(n, bool)
        if bad:  # a bad row is skipped whole
            good[list(bad)] = False
            for name in empty:
                empty[name] |= ~good
        step_key = next((k for k in self.step_keys if k in values), None)
        steps = np.arange(self.ordinal, self.ordinal + n, dtype=np.int64)
        if step_key is not None:
            known = ~empty[step_key]
            steps[known] = values[step_key][known].astype(np.int64)
        times = np.full(n, mtime, np.float64)
        time_key = None
        for key in TIME_KEYS:
            if key in values and not empty[key].any():
                candidate = values[key]
                if np.all((candidate >= 1e9) & (candidate < 1e10)):
                    times, time_key = candidate, key
                    break
        self.ordinal += n
        parsed.records += int(good.sum())
        kept = np.flatnonzero(good)[-64:]
        parsed.progress.extend(zip(times[kept].tolist(), steps[kept].tolist(), strict=True))
        for name, column_values in values.items():
            if name in (step_key, time_key) and name != "epoch":
                continue
            keep = ~empty[name]
            if not keep.any():
                continue
            if name in TOTAL_KEYS:
                parsed.total, parsed.total_is_end = int(column_values[keep][-1]), True
                continue
            parsed.add_points(name, steps[keep], times[keep], column_values[keep])
        for i in sorted(bad):
            parsed.add_bad(numbers[i], bad[i])


def is_csv(name: str) -> bool:
    return name.endswith(".csv")


def looks_like_csv(head: str) -> bool:
    """A log whose first line is a CSV header naming epoch or step (Keras' CSVLogger to a .log file)."""
    first = head.split("\n", 1)[0]
    return bool(CSV_HEADER.match(first) and STEP_COLUMN.search(first))


def csv_files(listing: Listing) -> list[str]:
    return [*listing.named(is_csv), *(p for p, kind in listing.sniffed.items() if kind == FORMAT.name)]


FORMAT = RunFormat(
    name="csv",
    precedence=40,
    recognise=lambda listing: Match() if csv_files(listing) else None,
    is_candidate=is_csv,
    records_end=False,  # a CSV says nothing of how its run ended
    files=FileKind("csv", "streamed", lambda path, settings: LineSource(path, CsvReader(), settings)),
    companions=csv_files,
    sniff=looks_like_csv,
)

