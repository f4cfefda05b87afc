"""GET /api/history: one series over a time span, from memory and the durable store. GET only.

GET /api/history?series=NAME&LABEL=VALUE…&since=T&until=T
    → {"series", "labels", "step_s", "points": [[t, mean, max], ...]}
The resolution is the finest that keeps the answer within ~2,000 points: raw points (the last
history.window_s), 1-minute buckets, or hour buckets. Labels are free-form query parameters that
pick one series (the request guard accepts any label name here); since/until are Unix seconds
(defaults: the last hour). Unknown series: 404; bad or reversed times, several matching series: 400.
"""

from __future__ import annotations

import time

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse

from monitor.model.storage.history import AmbiguousSeries, UnknownSeries, read_history
from monitor.model.store import Store
from monitor.web.api import json_safe
from monitor.web.http_guard import LABEL_PARAMS, echo

NAMED = {"series", "since", "until"}
MAX_SPAN_S = 20 * 366 * 86400.0
DEFAULT_SPAN_S = 3600.0


def _bad(detail: str) -> JSONResponse:
    return JSONResponse({"error": "bad request", "detail": detail}, status_code=400)


def register_history_api(app: FastAPI, store: Store) -> None:
    @app.get("/api/history", openapi_extra={LABEL_PARAMS: True})
    def get_history(
        request: Request,
        series: str = Query(..., min_length=1, max_length=200),
        since: float | None = Query(None, allow_inf_nan=False),
        until: float | None = Query(None, allow_inf_nan=False),
    ) -> JSONResponse:
        query = request.query_params.multi_items()
        names = [name for name, _ in query]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            return _bad(f"query parameter {echo(repeated[0])} is given more than once")
        labels = {name: value for name, value in query if name not in NAMED}
        end = time.time() if until is None else until
        start = end - DEFAULT_SPAN_S if since is None else since
        if start >= end:
            return _bad(f"since ({start:g}) must be before until ({end:g})")
        if end - start > MAX_SPAN_S or start < 0:
            return _bad(f"since..until ({start:g}..{end:g}) is not a span of Unix seconds labwall keeps")
        path = store.journal.path if store.journal is not None else None  # type: ignore[attr-defined]
        try:
            found = read_history(store, path, series, labels, start, end)
        except UnknownSeries as exc:
            return JSONResponse({"error": "not found", "detail": str(exc)[:300]}, status_code=404)
        except AmbiguousSeries as exc:
            return _bad(str(exc)[:500])
        return JSONResponse(json_safe({**found.as_dict(), "since": start, "until": end}))
