"""Read-only JSON API of the training runs: a view of the store's run registry. GET only.

GET /api/runs                               every run, most recently updated first
GET /api/runs/{id}                          one run's summary (its hyperparameters under "params": flat `a.b` keys)
GET /api/runs/{id}/metrics/{metric}         {"points": [[step, time, value], ...], "cursor", "reset"}
    ?after=CURSOR                           only the points after a cursor from an earlier answer
                                            (0 ≤ CURSOR < 2^63; anything else answers 400)
Unknown runs or metrics, and anything that is not a run id (`..`, `%2f`, ...) answer a JSON 404;
a run id is only ever looked up in the registry, never used as a path.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse

from monitor.model.run_gpus import runs_with_gpu_readings
from monitor.model.run_registry import valid_run_id
from monitor.model.store import Store
from monitor.web.api import json_safe
from monitor.web.http_guard import MAX_CURSOR


def _not_found(what: str) -> JSONResponse:
    return JSONResponse({"error": "not found", "detail": what}, status_code=404)


def register_runs_api(app: FastAPI, store: Store) -> None:
    registry = store.runs

    @app.get("/api/runs")
    def get_runs() -> JSONResponse:
        return JSONResponse(json_safe(runs_with_gpu_readings(registry.summaries(), store)))

    @app.get("/api/runs/{run_id}")
    def get_run(run_id: str) -> JSONResponse:
        summary = registry.summary(run_id) if valid_run_id(run_id) else None
        if summary is None:
            return _not_found("no such run")
        return JSONResponse(json_safe(runs_with_gpu_readings([summary], store)[0]))

    @app.get("/api/runs/{run_id}/metrics/{metric:path}")
    def get_metric(run_id: str, metric: str, after: int = Query(0, ge=0, le=MAX_CURSOR)) -> JSONResponse:
        if not valid_run_id(run_id):
            return _not_found("no such run")
        read = registry.read_metric_after(run_id, metric, after)
        if read is None:
            known = registry.metric_names(run_id)
            return _not_found("no such run" if known is None else "no such metric")
        body: dict[str, Any] = {"points": read.points, "cursor": read.cursor, "reset": read.reset}
        return JSONResponse(body)

    @app.get("/api/runs/{rest:path}")
    def get_runs_other(rest: str) -> JSONResponse:
        # Anything else under /api/runs (e.g. a decoded "../../etc/passwd") is a JSON 404, never a page.
        return _not_found("no such run")
