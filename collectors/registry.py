"""Builds the collectors the configuration asks for."""

from __future__ import annotations

from collectors.base import Collector
from collectors.gpu import build_gpu_collector
from collectors.host import HostCollector
from monitor.config import Config
from monitor.store import Store


def build_collectors(config: Config, store: Store) -> list[Collector]:
    collectors: list[Collector] = []
    if config.host.enabled:
        collectors.append(HostCollector(store, config.host.interval_s, disk_paths=list(config.runs.roots)))
    gpu = build_gpu_collector(config, store)
    if gpu is not None:
        collectors.append(gpu)
    return collectors
