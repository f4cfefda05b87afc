"""Read-only JSON API: /healthz and /api/snapshot, views of the store. GET only."""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse

from monitor.model.documents import GpuDocumentField, Source
from monitor.model.numbers import finite
from monitor.model.run_gpus import gpus_with_runs, join_document
from monitor.model.store import Store
from monitor.web.http_guard import MAX_CURSOR


def json_safe(value: Any) -> Any:
    """Replace NaN and infinities (which JSON cannot carry) with null, recursively."""
    if isinstance(value, float):
        return finite(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def health(store: Store) -> dict[str, Any]:
    """Overall status plus each collector's; `reasons` says why the status is degraded."""
    collectors = store.health()
    reasons = []
    for name, h in sorted(collectors.items()):
        if h["state"] not in ("ok", "disabled"):
            reasons.append(f"{name}: {h['state']}" + (f" — {h['error']}" if h.get("error") else ""))
        elif h.get("degraded"):
            reasons.append(f"{name}: {h['degraded']}")
    journal = getattr(store, "journal", None)  # durable storage; stand-in stores may have none
    storage = journal.snapshot() if journal is not None else {"state": "disabled"}
    if storage.get("degraded"):
        reasons.append(f"storage: {storage['degraded']}")
    return {
        "status": "degraded" if reasons else "ok",
        "reasons": reasons,
        "time": time.time(),
        "host": store.host,
        "collectors": collectors,
        "storage": storage,  # durable storage (README "History and storage")
    }


def snapshot(store: Store) -> dict[str, Any]:
    """The current value of every field: what the wall shows, as JSON."""
    gpu_state = store.state(Source.GPU)
    system_state = store.state(Source.HOST)
    gpu_doc: dict[str, Any] = gpu_state[1] if gpu_state else {}
    remote = store.remote.view()
    return json_safe(
        {
            "host": store.host,
            "time": time.time(),
            "simulated": bool(gpu_doc.get(GpuDocumentField.SIMULATED, False)),
            "gpu_source": {k: v for k, v in gpu_doc.items() if k != GpuDocumentField.GPUS} or None,
            "gpus": gpus_with_runs(gpu_doc.get(GpuDocumentField.GPUS, []), join_document(store)),
            "gpus_time": gpu_state[0] if gpu_state else None,
            "system": system_state[1] if system_state else None,
            "system_time": system_state[0] if system_state else None,
            # the other hosts, when the prometheus source is on (README "A wall for many servers")
            "hosts": [h.as_dict() for h in remote.hosts],
            "hosts_source": remote.source.as_dict() if remote.source.url else None,
        }
    )


def register_api(app: FastAPI, store: Store) -> None:
    @app.get("/healthz")
    def get_healthz() -> JSONResponse:
        body = health(store)
        return JSONResponse(json_safe(body))

    @app.get("/api/snapshot")
    def get_snapshot() -> JSONResponse:
        return JSONResponse(snapshot(store))

    @app.get("/api/events")
    def get_events(after: int = Query(0, ge=0, le=MAX_CURSOR), limit: int = 200) -> JSONResponse:
        limit = max(1, min(limit, 1000))
        events = store.events.read_after(after, limit)
        return JSONResponse({"cursor": store.events.cursor, "events": [e.as_dict() for e in events]})
