"""Usage records → GPU-hours per user, run or GPU, with hour or day buckets: what /api/usage answers
and the wall's strip shows (the same function, so both show the same numbers).

A record counts in [since, until) by the start of its minute (or hour rollup), and in the bucket
that holds that start; buckets are whole hours or days in UTC, the first one holding `since`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from monitor.model.usage import UsageColumns, UsageKey, UsageLedger

By = Literal["user", "run", "gpu"]
Bucket = Literal["hour", "day"]
BUCKET_S: dict[str, float] = {"hour": 3600.0, "day": 86400.0}
MAX_BUCKETS = 2000
HOUR = 3600.0
JOULES_PER_KWH = 3.6e6
DIGITS = 6  # hours to 3.6 ms


def group_key(by: By, key: UsageKey) -> str:
    host, gpu, _uuid, user, run = key
    return user if by == "user" else run if by == "run" else f"{host}/{gpu}"


def bucket_starts(since: float, until: float, bucket: Bucket) -> np.ndarray:
    width = BUCKET_S[bucket]
    first = math.floor(since / width) * width
    return first + width * np.arange(max(1, math.ceil((until - first) / width)))


def _sums(group: np.ndarray, rows: np.ndarray, size: int) -> dict[str, np.ndarray]:
    return {name: np.bincount(group, weights=rows[name], minlength=size)
            for name in ("held_s", "gpu_s", "idle_s", "busy_s", "energy_j")}


def _figures(sums: dict[str, np.ndarray], i: int | slice) -> dict[str, Any]:
    def hours(name: str) -> float:
        return round(float(np.sum(sums[name][i])) / HOUR, DIGITS)
    return {
        "gpu_hours": hours("gpu_s"),
        "idle_gpu_hours": hours("idle_s"),
        "busy_gpu_hours": hours("busy_s"),
        "energy_kwh": round(float(np.sum(sums["energy_j"][i])) / JOULES_PER_KWH, DIGITS),
        "held_hours": hours("held_s"),
    }


def usage_report(ledger: UsageLedger, by: By, since: float, until: float, bucket: Bucket,
                 names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """{"since", "until", "bucket", "rows": [{"key", "gpu_hours", ..., "buckets": [[t, h], ...]}],
    "total": {...}}; rows by GPU-hours, largest first. `names`: run id → name (by=run)."""
    columns: UsageColumns = ledger.columns(since, until)
    rows = columns.rows
    labels = [group_key(by, key) for key in columns.keys]
    keys, key_group = np.unique(np.array(labels or [""], dtype=object), return_inverse=True)
    group = key_group[rows["key"]] if len(rows) else np.zeros(0, dtype=np.intp)
    starts = bucket_starts(since, until, bucket)
    width = BUCKET_S[bucket]
    slot = np.clip(((rows["start"] - starts[0]) // width).astype(np.intp), 0, len(starts) - 1)
    size = len(keys)
    sums = _sums(group, rows, size)
    per_bucket = np.bincount(group * len(starts) + slot, weights=rows["gpu_s"],
                             minlength=size * len(starts)).reshape(size, len(starts)) / HOUR
    present = np.bincount(group, minlength=size) > 0
    times = starts.tolist()
    result_rows = []
    for i in np.flatnonzero(present):
        key = str(keys[i])
        row: dict[str, Any] = {"key": key, **_figures(sums, int(i))}
        if by == "run" and names is not None and key in names:
            row["name"] = names[key]
        if by == "gpu":
            row["host"], row["gpu"] = key.rsplit("/", 1)
        row["buckets"] = [[t, round(h, DIGITS)] for t, h in zip(times, per_bucket[i].tolist(), strict=True)]
        result_rows.append(row)
    result_rows.sort(key=lambda r: (-r["gpu_hours"], r["key"]))
    total_buckets = per_bucket.sum(axis=0).tolist() if size else [0.0] * len(times)
    total = {**_figures(sums, slice(None)),
             "buckets": [[t, round(h, DIGITS)] for t, h in zip(times, total_buckets, strict=True)]}
    return {"since": since, "until": until, "bucket": bucket, "by": by, "rows": result_rows, "total": total}


def default_bucket(since: float, until: float) -> Bucket:
    return "hour" if (until - since) / BUCKET_S["hour"] <= MAX_BUCKETS else "day"
