"""Training runs on disk: discovery, file watching and tailing, format readers, status; declared as `runs`."""

from __future__ import annotations

from collectors.registry import CollectorSpec
from collectors.runs.collector import RunsCollector
from collectors.runs.config import RunsConfig
from monitor.model.settings import CollectorContext

__all__ = ["SPEC", "RunsCollector", "RunsConfig"]


def build_runs_collector(section: RunsConfig, context: CollectorContext) -> RunsCollector | None:
    return RunsCollector(context.store, section) if section.roots else None


SPEC = CollectorSpec("runs", RunsConfig, build_runs_collector, order=30)
