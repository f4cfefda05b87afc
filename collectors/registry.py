"""Builds the collectors the configuration asks for."""

from __future__ import annotations

from collectors.base import Collector
from collectors.gpu.collector import build_gpu_collector
from collectors.host import HostCollector
from collectors.join.collector import RunJoinCollector
from collectors.prometheus.collector import PrometheusCollector
from collectors.runs import RunsCollector
from monitor.alerts.engine import build_alert_engine
from monitor.config import Config
from monitor.model.store import Store


def build_collectors(config: Config, store: Store) -> list[Collector]:
    collectors: list[Collector] = []
    if config.host.enabled:
        collectors.append(HostCollector(store, config.host.interval_s, disk_paths=list(config.runs.roots),
                                        disk_full_ratio=config.thresholds.disk_ratio))
    gpu = build_gpu_collector(config, store)
    if gpu is not None:
        collectors.append(gpu)
    if config.runs.roots:
        collectors.append(RunsCollector(store, config.runs))
    if gpu is not None and config.runs.roots and config.join.enabled:  # which run each GPU process writes
        collectors.append(RunJoinCollector(store, config.join, roots=[str(r) for r in config.runs.roots]))
    if config.prometheus.url:  # the other hosts, through a Prometheus server
        collectors.append(PrometheusCollector(store, config.prometheus))
    alerts = build_alert_engine(config, store)
    if alerts is not None:  # last: it only reads what the others write
        collectors.append(alerts)
    return collectors
