"""The training-runs panel. Runs are filled in by the run watcher (a later issue); until then the
panel says where runs come from, so an empty panel is never a mystery."""

from __future__ import annotations

from nicegui import ui

from monitor.config import Config


def roots_text(config: Config) -> list[str]:
    return [str(root) for root in config.runs.roots]


def build_runs(config: Config) -> None:
    roots = roots_text(config)
    with ui.element("div").classes("panel runs"):
        with ui.element("div").classes("p-head"):
            ui.label("Training runs").classes("p-title")
            ui.label("0 active").classes("p-sub")
        with ui.element("div").classes("runs-empty"):
            ui.label("No training runs yet").classes("re-t")
            ui.label("labwall watches:" if roots else "labwall watches no directory yet.").classes("re-x")
            for root in roots[:4]:
                ui.label(root).classes("re-root")
            if len(roots) > 4:
                ui.label(f"and {len(roots) - 4} more").classes("re-x")
            ui.label("Add directories with runs.roots in config.yaml or --runs DIR.").classes("re-x")
