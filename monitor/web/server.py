"""Wires the model to the web: API routes, the wall page, start-up and shutdown hooks, ui.run."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from nicegui import app, ui

from monitor.app import Monitor
from monitor.config import Config
from monitor.demo.lab import DemoLab
from monitor.pages import register_pages
from monitor.service.systemd import install_service_hooks
from monitor.wall import register_wall
from monitor.web.access import AccessRules, install_access_rules
from monitor.web.alerts_api import register_alerts_api
from monitor.web.api import health, register_api
from monitor.web.history_api import register_history_api
from monitor.web.http_guard import install_request_guard
from monitor.web.metrics import register_metrics
from monitor.web.runs_api import register_runs_api
from monitor.web.usage_api import register_usage_api

log = logging.getLogger(__name__)


def stop_demo_lab(lab: DemoLab) -> None:
    """--demo without run roots: the demo trainers write real runs into a temporary root; on shutdown
    they are stopped and the root (and its scenario file) removed."""
    lab.stop()
    shutil.rmtree(lab.root, ignore_errors=True)
    Path(f"{lab.root}-gpus.json").unlink(missing_ok=True)


def serve(config: Config, demo_lab: DemoLab | None = None) -> None:
    monitor = Monitor(config)
    install_request_guard(app)  # oversized headers, unknown paths, bad query parameters: a short 4xx
    register_api(app, monitor.store)
    register_alerts_api(app, monitor.store)
    register_runs_api(app, monitor.store)
    register_usage_api(app, monitor.store)
    register_history_api(app, monitor.store)
    register_metrics(app, monitor.store)
    if demo_lab is not None:
        app.on_shutdown(lambda: stop_demo_lab(demo_lab))
    register_wall(monitor)
    register_pages(monitor)  # /run/{id}, /runs: the read-only drill-down pages
    app.on_startup(monitor.start)
    # A lambda: NiceGUI passes the app to a one-parameter handler, which stop() would take as its timeout.
    # 2 s for the collectors after at most 2 s of graceful HTTP shutdown keeps SIGTERM under 5 s.
    app.on_shutdown(lambda: monitor.stop(timeout_s=2.0))
    install_service_hooks(app, monitor, lambda: health(monitor.store))  # sd_notify: READY, WATCHDOG, STATUS, STOPPING
    server = config.server
    install_access_rules(app, AccessRules(server.allow, server.token, server.metrics_allow, server.healthz_open))
    host = config.server.bind
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    print(f"labwall: serving the wall at http://{shown}:{config.server.port}/", flush=True)
    ui.run(
        host=host,
        port=config.server.port,
        title=config.wall.title,
        dark=True,
        reload=False,
        show=False,
        uvicorn_logging_level="warning",
        reconnect_timeout=10.0,
        # Open websockets get this long to close on SIGTERM, so the whole stop stays under 5 s.
        timeout_graceful_shutdown=2,
        # The wall styles itself (wall.css); NiceGUI's Tailwind runtime would only watch every DOM update.
        tailwind=False,
    )
