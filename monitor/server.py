"""Wires the model to the web: API routes, the wall page, start-up and shutdown hooks, ui.run."""

from __future__ import annotations

import logging

from nicegui import app, ui

from monitor.api import register_api
from monitor.app import Monitor
from monitor.config import Config
from monitor.wall import register_wall

log = logging.getLogger(__name__)


def serve(config: Config) -> None:
    monitor = Monitor(config)
    register_api(app, monitor.store)
    register_wall(monitor)
    app.on_startup(monitor.start)
    app.on_shutdown(monitor.stop)
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
    )
