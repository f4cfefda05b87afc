"""GET /metrics: the store's latest values in Prometheus text format 0.0.4, a third view of the store.

A custom prometheus-client Collector reads only the latest state documents, collector health and
each run's latest values, never the ring buffers, so a scrape costs the same whatever the history.
A value that is unknown (None, NaN, unsupported) leaves its series out; it is never exported as NaN.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import metadata
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from monitor.model import metric_names as m
from monitor.model.documents import GPU_OK, DiskField, GpuField, HostField, ProcessField, Source, gpu_readings, latest
from monitor.model.numbers import finite
from monitor.model.run_gpus import gpus_with_runs, join_document
from monitor.model.store import Store


def labwall_version() -> str:
    try:
        return metadata.version("labwall")
    except metadata.PackageNotFoundError:  # run from a source tree that was never pip-installed
        return "unknown"


class Families:
    """The metric families of one scrape, created on first use, every series labelled with the host."""

    def __init__(self, host: str) -> None:
        self.host = host
        self._families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}

    def add(self, metric: m.MetricName, value: Any, *labels: Any, scale: float = 1.0) -> None:
        number = finite(value, scale)
        if number is None:
            return
        family = self._families.get(metric.name)
        if family is None:
            kind = CounterMetricFamily if metric.kind == "counter" else GaugeMetricFamily
            family = self._families[metric.name] = kind(metric.name, metric.help, labels=metric.all_labels)
        family.add_metric([self.host, *("" if v is None else str(v) for v in labels)], number)

    def __iter__(self) -> Iterator[Metric]:
        # Table order, so the text is stable between scrapes; a family without series is left out.
        return (self._families[d.name] for d in m.ALL if d.name in self._families)


def add_gpus(families: Families, store: Store) -> None:
    for gpu in gpus_with_runs(gpu_readings(store), join_document(store)):
        index, uuid = gpu.get(GpuField.INDEX), gpu.get(GpuField.UUID) or ""
        families.add(m.GPU_INFO, 1, index, uuid, gpu.get(GpuField.NAME) or "unknown")
        families.add(m.GPU_UP, 1 if gpu.get(GpuField.STATUS) == GPU_OK else 0, index, uuid)
        families.add(m.GPU_UTILIZATION, gpu.get(GpuField.UTILIZATION_GPU_PERCENT), index, uuid, scale=0.01)
        families.add(m.GPU_MEMORY_USED, gpu.get(GpuField.MEMORY_USED_BYTES), index, uuid)
        families.add(m.GPU_MEMORY_TOTAL, gpu.get(GpuField.MEMORY_TOTAL_BYTES), index, uuid)
        families.add(m.GPU_TEMPERATURE, gpu.get(GpuField.TEMPERATURE_CELSIUS), index, uuid)
        families.add(m.GPU_POWER, gpu.get(GpuField.POWER_DRAW_WATTS), index, uuid)
        families.add(m.GPU_POWER_LIMIT, gpu.get(GpuField.POWER_LIMIT_WATTS), index, uuid)
        for process in gpu.get(GpuField.PROCESSES) or []:
            memory = process.get(ProcessField.GPU_MEMORY_BYTES)
            pid, user, run_id = (process.get(k) for k in (ProcessField.PID, ProcessField.USER, ProcessField.RUN_ID))
            families.add(m.GPU_PROCESS_MEMORY, memory, index, uuid, pid, user, run_id)


def add_host(families: Families, store: Store) -> None:
    system: dict[str, Any] = latest(store, Source.HOST)
    if not system:
        return
    families.add(m.HOST_CPU, system.get(HostField.CPU_PERCENT), scale=0.01)
    families.add(m.HOST_MEMORY_USED, system.get(HostField.MEMORY_USED_BYTES))
    families.add(m.HOST_MEMORY_TOTAL, system.get(HostField.MEMORY_TOTAL_BYTES))
    load = system.get(HostField.LOAD_AVERAGE) or []
    families.add(m.HOST_LOAD1, load[0] if load else None)
    for disk in system.get(HostField.DISKS) or []:
        families.add(m.HOST_DISK_USED, disk.get(DiskField.USED_RATIO), disk.get(DiskField.PATH))
    # The host collector publishes rates, not the raw byte counters: the network counters are left out.


def add_runs(families: Families, store: Store) -> None:
    for run in store.runs.latest():
        run_id = run["id"]
        families.add(m.RUN_INFO, 1, run_id, run["name"], run["root"])
        families.add(m.RUN_STEP, run["step"], run_id)
        families.add(m.RUN_STATUS, 1, run_id, run["status"])
        for metric, value in sorted(run["metrics"].items()):
            families.add(m.RUN_METRIC, value, run_id, metric)
        families.add(m.RUN_LAST_UPDATE, run["updated"], run_id)
        families.add(m.RUN_BAD_LINES, run["bad_lines"], run_id)


def add_collectors(families: Families, store: Store) -> None:
    for name, health in sorted(store.health().items()):
        families.add(m.COLLECTOR_UP, 1 if health.get("state") == "ok" else 0, name)
        families.add(m.COLLECTOR_LAST_SUCCESS, health.get("last_sample"), name)


def add_usage(families: Families, store: Store) -> None:
    """Per-user GPU usage counters: sums of the usage records closed since this process started
    (store.usage.user_totals), so they only grow; a restart resets them, as Prometheus expects."""
    for user, totals in sorted(store.usage.user_totals().items()):
        families.add(m.GPU_USER_SECONDS, totals.gpu_s, user)
        families.add(m.GPU_USER_IDLE_SECONDS, totals.idle_s, user)
        families.add(m.GPU_USER_ENERGY, totals.energy_j, user)


class StoreExporter(Collector):
    """prometheus-client calls `collect` on every scrape; it reads the store's latest values only."""

    def __init__(self, store: Store, version: str | None = None) -> None:
        self.store = store
        self.version = version or labwall_version()

    def collect(self) -> Iterator[Metric]:
        families = Families(self.store.host)
        families.add(m.INFO, 1, self.version)
        add_gpus(families, self.store)
        add_host(families, self.store)
        add_runs(families, self.store)
        add_collectors(families, self.store)
        add_usage(families, self.store)
        return iter(families)


def metrics_text(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def exporter_registry(store: Store) -> CollectorRegistry:
    # A registry of its own: only labwall's series, not prometheus-client's process/python defaults.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreExporter(store))
    return registry


def register_metrics(app: FastAPI, store: Store) -> None:
    registry = exporter_registry(store)

    @app.get("/metrics")
    def get_metrics() -> Response:
        return Response(metrics_text(registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)
