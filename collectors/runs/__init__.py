"""Training runs on disk: discovery, file watching and tailing, format readers, status."""

from collectors.runs.collector import RunsCollector

__all__ = ["RunsCollector"]
