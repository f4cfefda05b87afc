"""Read-only JSON API of the GPU usage records: GPU-hours per user, run or GPU. GET only.

GET /api/usage?by=user|run|gpu&since=T&until=T&bucket=hour|day
    T: Unix seconds, or an ISO 8601 time (`2025-03-01T08:00:00Z`; without a zone: UTC).
    Defaults: by=user, until=now, since=until − 7 days, bucket=hour (day when that makes over
    2,000 buckets). → {"since", "until", "bucket", "by", "rows": [{"key", "gpu_hours",
    "idle_gpu_hours", "busy_gpu_hours", "energy_kwh", "held_hours", "buckets": [[t, gpu_hours], ...]}],
    "total": {...}}; see monitor/usage/report.py. A bad parameter answers 400 naming it.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Literal

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse

from monitor.model.store import Store
from monitor.usage.report import BUCKET_S, MAX_BUCKETS, By, default_bucket, usage_report
from monitor.web.http_guard import echo

WEEK_S = 7 * 86400.0
EARLIEST = 0.0
LATEST = 4102444800.0  # 2100-01-01: anything later is a typo


class BadParameter(ValueError):
    def __init__(self, name: str, value: str, rule: str) -> None:
        super().__init__(f"query parameter {echo(name)}: {rule} (got {echo(value)})")


def parse_time(name: str, value: str) -> float:
    """Unix seconds or ISO 8601 (naive: UTC); a BadParameter names the parameter otherwise."""
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise BadParameter(name, value, "must be Unix seconds or an ISO 8601 time") from None
        seconds = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    if not math.isfinite(seconds) or not EARLIEST <= seconds <= LATEST:
        raise BadParameter(name, value, "must be a time between 1970 and 2100")
    return seconds


def usage_answer(store: Store, by: By, since: str | None, until: str | None,
                 bucket: Literal["hour", "day"] | None, now: float) -> dict:
    end = parse_time("until", until) if until is not None else now
    start = parse_time("since", since) if since is not None else end - WEEK_S
    if start >= end:
        raise BadParameter("since", since or str(start), f"must be before until ({end:.0f})")
    chosen = bucket or default_bucket(start, end)
    if (end - start) / BUCKET_S[chosen] > MAX_BUCKETS:
        raise BadParameter("bucket", chosen, f"at most {MAX_BUCKETS} buckets: use a shorter span or bucket=day")
    names = {s["id"]: s["name"] for s in store.runs.summaries()} if by == "run" else None
    return usage_report(store.usage, by, start, end, chosen, names)


def register_usage_api(app: FastAPI, store: Store) -> None:
    @app.get("/api/usage")
    def get_usage(by: By = "user", since: str | None = Query(None, max_length=64),
                  until: str | None = Query(None, max_length=64),
                  bucket: Literal["hour", "day"] | None = None) -> JSONResponse:
        try:
            return JSONResponse(usage_answer(store, by, since, until, bucket, time.time()))
        except BadParameter as exc:
            return JSONResponse({"error": "bad request", "detail": str(exc)}, status_code=400)
