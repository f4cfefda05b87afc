"""The wall page (placeholder until the wall-page work lands)."""

from __future__ import annotations

from nicegui import ui

from monitor.app import Monitor


def register_wall(monitor: Monitor) -> None:
    @ui.page("/")
    def wall() -> None:
        ui.label(f"labwall — {monitor.store.host}")
