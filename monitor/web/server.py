"""Wires the model to the web: API routes, the wall page, start-up and shutdown hooks, ui.run."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

from nicegui import app, ui

from monitor.app import Monitor
from monitor.config import Config
from monitor.demo.trainer import start_demo_trainer, stop_demo_trainer
from monitor.service.systemd import install_service_hooks
from monitor.wall import register_wall
from monitor.web.alerts_api import register_alerts_api
from monitor.web.api import register_api
from monitor.web.history_api import register_history_api
from monitor.web.http_guard import install_request_guard
from monitor.web.metrics import register_metrics
from monitor.web.runs_api import register_runs_api

log = logging.getLogger(__name__)


def run_demo_trainer(directory: Path) -> None:
    """--demo without run roots: a small fake trainer process writes real runs into `directory`,
    so a newcomer sees the real watch path; it is stopped and the directory removed on shutdown."""
    trainer: list[subprocess.Popen[bytes]] = []

    def stop() -> None:
        for process in trainer:
            stop_demo_trainer(process)
        shutil.rmtree(directory, ignore_errors=True)

    app.on_startup(lambda: trainer.append(start_demo_trainer(directory)))
    app.on_shutdown(stop)


def serve(config: Config, demo_runs: Path | None = None) -> None:
    monitor = Monitor(config)
    install_request_guard(app)  # oversized headers, unknown paths, bad query parameters: a short 4xx
    register_api(app, monitor.store)
    register_alerts_api(app, monitor.store)
    register_runs_api(app, monitor.store)
    register_history_api(app, monitor.store)
    register_metrics(app, monitor.store)
    if demo_runs is not None:
        run_demo_trainer(demo_runs)
    register_wall(monitor)
    app.on_startup(monitor.start)
    # A lambda: NiceGUI passes the app to a one-parameter handler, which stop() would take as its timeout.
    # 2 s for the collectors after at most 2 s of graceful HTTP shutdown keeps SIGTERM under 5 s.
    app.on_shutdown(lambda: monitor.stop(timeout_s=2.0))
    install_service_hooks(app, monitor)  # sd_notify: READY, WATCHDOG, STATUS, STOPPING
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
