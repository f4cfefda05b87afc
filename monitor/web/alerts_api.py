"""Read-only JSON API of the alerts: a view of the "alerts" state document. GET only.

GET /api/alerts   {"active": [...], "pending": [...], "recent": [...], ...}
    active: raised and not cleared, largest first (critical before warning, then the oldest first);
    pending: conditions waiting for their duration; recent: cleared ones, most recently cleared first.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from monitor.alerts.engine import sort_active
from monitor.model.documents import Source
from monitor.model.store import Store
from monitor.web.api import json_safe


def alerts_view(store: Store) -> dict[str, Any]:
    found = store.state(Source.ALERTS)
    now = time.time()
    if found is None:  # alerts disabled, or the engine has not ticked yet
        return {
            "host": store.host,
            "time": now,
            "enabled": False,
            "evaluated_at": None,
            "active": [],
            "pending": [],
            "recent": [],
            "webhook": None,
        }
    evaluated_at, doc = found
    return json_safe({
        "host": store.host,
        "time": now,
        "enabled": True,
        "evaluated_at": evaluated_at,
        "rules": doc.get("rules", []),
        "active": sort_active(doc.get("active", [])),
        "pending": doc.get("pending", []),
        "recent": doc.get("recent", []),
        "raised_total": doc.get("raised_total", 0),
        "cleared_total": doc.get("cleared_total", 0),
        "webhook": doc.get("webhook"),
    })  # fmt: skip


def register_alerts_api(app: FastAPI, store: Store) -> None:
    @app.get("/api/alerts")
    def get_alerts() -> JSONResponse:
        return JSONResponse(alerts_view(store))
