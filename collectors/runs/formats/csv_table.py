"""CSV with a header line: Lightning's CSVLogger `metrics.csv`, Keras' CSVLogger and the like.

The first non-empty line is the header. Rows may be sparse (Lightning writes train and val keys on
different rows, leaving the other cells empty). `step` (else global_step, iteration, epoch) gives
the step, else the row's position; `time`/`timestamp`/`wall_time` a Unix time. Cells are converted
to numbers with pandas (`to_numeric`) a batch at a time; a column that never held a number is a
text field. Bad rows: more or fewer cells than the header, a non-numeric cell in a numeric column,
NaN/inf, non-UTF-8. When the writer rewrites the file with a new header the tailer reports a
reset and the reader starts over with the new header (points are merged by step, not duplicated).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence

import numpy as np
import pandas as pd

from collectors.runs.formats import STEP_KEYS, TIME_KEYS, TOTAL_KEYS, Parsed

CSV_STEP_KEYS = (*STEP_KEYS, "epoch")


class CsvReader:
    def __init__(self) -> None:
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
                self.header = [f.strip() for f in fields]
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
                bad.setdefault(numbers[i], f"{name!r} is not a number: {rows[i][self.header.index(name)][:40]!r}")
            for i in np.flatnonzero(~blank & ~failed & ~np.isfinite(converted)).tolist():
                bad.setdefault(numbers[i], f"{name!r} is {'NaN' if np.isnan(converted[i]) else 'infinite'}")
            values[name] = converted
            empty[name] = blank | failed | ~np.isfinite(converted)
        step_key = next((k for k in CSV_STEP_KEYS if k in values), None)
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
        parsed.records += n
        parsed.progress.extend(zip(times[-64:].tolist(), steps[-64:].tolist(), strict=True))
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
        for no in sorted(bad):
            parsed.add_bad(no, bad[no])
