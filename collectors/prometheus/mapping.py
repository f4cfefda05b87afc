"""Which PromQL queries feed the multi-host wall, and how their answers become host readings.

Two flavors: `labwall` reads the `labwall_*` series every labwall serves at /metrics (host label
`host`); `dcgm` reads NVIDIA DCGM-exporter's `DCGM_FI_DEV_*` series plus node_exporter's `node_*`
series, so a lab that already runs those gets a wall without installing labwall on each server.
Every query covers all hosts at once (one query per metric, never one per host). The readings use
the field names of labwall's own snapshot (`utilization_gpu_percent`, `memory_used_bytes`, …), so
the views treat a remote GPU like a local one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from collectors.prometheus.config import PrometheusConfig
from collectors.prometheus.query import InstantSample, RangeSeries
from monitor.model import metric_names as m
from monitor.model.documents import GPU_LOST, GPU_OK, GpuField, HostField

MIB = 1024**2
GPU_FIELDS = (GpuField.UTILIZATION_GPU_PERCENT, GpuField.MEMORY_USED_BYTES, GpuField.MEMORY_TOTAL_BYTES,
              GpuField.TEMPERATURE_CELSIUS, GpuField.POWER_DRAW_WATTS, GpuField.POWER_LIMIT_WATTS)
LOAD1 = "load1"  # a remote host's 1-minute load (this host's HostReading has the whole load_average)
_PORT = re.compile(r":\d+$")


@dataclass(frozen=True, slots=True)
class Metric:
    key: str  # the reading field it fills (or a special key: "_seen", "_gpu_up", run fields)
    promql: str
    scope: str  # "gpu": one value per (host, gpu); "host": one per host; "run": one per (host, run)
    scale: float = 1.0


@dataclass(frozen=True)
class Flavor:
    name: str
    metrics: tuple[Metric, ...]
    spark: str  # range query: the mean GPU utilisation (%) of each host
    host_of: Callable[[dict[str, str]], str | None]
    uuid_label: str
    name_label: str
    runs: tuple[Metric, ...] = ()


def promql_string(text: str) -> str:
    """`text` as a PromQL double-quoted string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _host_from(label: str, *fallbacks: str) -> Callable[[dict[str, str]], str | None]:
    """The host name: `label`'s value, else the first fallback label's without its port (an address
    label such as node_exporter's `instance="gpu-1:9100"` names the host gpu-1)."""
    def host_of(labels: dict[str, str]) -> str | None:
        for name in (label, *fallbacks):
            value = labels.get(name)
            if value:
                return value if name == label and name != "instance" else _PORT.sub("", value)
        return None
    return host_of


def labwall_flavor(config: PrometheusConfig) -> Flavor:
    s = "{" + m.HOST_LABEL + "=~" + promql_string(config.host_selector) + "}"
    gpu = [("_gpu_info", m.GPU_INFO, 1.0), ("_gpu_up", m.GPU_UP, 1.0),
           (GpuField.UTILIZATION_GPU_PERCENT, m.GPU_UTILIZATION, 100.0),
           (GpuField.MEMORY_USED_BYTES, m.GPU_MEMORY_USED, 1.0),
           (GpuField.MEMORY_TOTAL_BYTES, m.GPU_MEMORY_TOTAL, 1.0),
           (GpuField.TEMPERATURE_CELSIUS, m.GPU_TEMPERATURE, 1.0),
           (GpuField.POWER_DRAW_WATTS, m.GPU_POWER, 1.0),
           (GpuField.POWER_LIMIT_WATTS, m.GPU_POWER_LIMIT, 1.0)]
    host = [("_seen", m.INFO, 1.0), (HostField.CPU_PERCENT, m.HOST_CPU, 100.0),
            (HostField.MEMORY_USED_BYTES, m.HOST_MEMORY_USED, 1.0),
            (HostField.MEMORY_TOTAL_BYTES, m.HOST_MEMORY_TOTAL, 1.0), (LOAD1, m.HOST_LOAD1, 1.0)]
    runs = [("_run_info", m.RUN_INFO), ("step", m.RUN_STEP), ("_status", m.RUN_STATUS),
            ("_metric", m.RUN_METRIC), ("updated", m.RUN_LAST_UPDATE)]
    return Flavor(
        name="labwall",
        metrics=(*(Metric(k, metric.name + s, "gpu", scale) for k, metric, scale in gpu),
                 *(Metric(k, metric.name + s, "host", scale) for k, metric, scale in host)),
        spark=f"100 * avg by ({m.HOST_LABEL}) ({m.GPU_UTILIZATION.name}{s})",
        host_of=_host_from(m.HOST_LABEL), uuid_label="uuid", name_label="name",
        runs=tuple(Metric(k, metric.name + s, "run") for k, metric in runs),
    )


def dcgm_flavor(config: PrometheusConfig) -> Flavor:
    h, n = config.dcgm_host_label, config.node_host_label
    g = "{" + h + "=~" + promql_string(config.host_selector) + "}"
    # node_exporter's host label is usually an address: the selector matches the name before ":port"
    ns = n + "=~" + promql_string(f"({config.host_selector})(:[0-9]+)?")
    node = "{" + ns + "}"
    return Flavor(
        name="dcgm",
        metrics=(
            Metric(GpuField.UTILIZATION_GPU_PERCENT, f"DCGM_FI_DEV_GPU_UTIL{g}", "gpu"),
            Metric(GpuField.MEMORY_USED_BYTES, f"DCGM_FI_DEV_FB_USED{g}", "gpu", MIB),
            Metric(GpuField.MEMORY_TOTAL_BYTES, f"DCGM_FI_DEV_FB_USED{g} + DCGM_FI_DEV_FB_FREE{g}", "gpu", MIB),
            Metric(GpuField.TEMPERATURE_CELSIUS, f"DCGM_FI_DEV_GPU_TEMP{g}", "gpu"),
            Metric(GpuField.POWER_DRAW_WATTS, f"DCGM_FI_DEV_POWER_USAGE{g}", "gpu"),
            Metric(HostField.CPU_PERCENT,
                   f'100 * (1 - avg by ({n}) (irate(node_cpu_seconds_total{{mode="idle",{ns}}}[1m])))', "host"),
            Metric(HostField.MEMORY_TOTAL_BYTES, f"node_memory_MemTotal_bytes{node}", "host"),
            Metric(HostField.MEMORY_USED_BYTES,
                   f"node_memory_MemTotal_bytes{node} - node_memory_MemAvailable_bytes{node}", "host"),
        ),
        spark=f"avg by ({h}) (DCGM_FI_DEV_GPU_UTIL{g})",
        host_of=_host_from(h, n if n != h else "instance"),
        uuid_label="UUID", name_label="modelName",
    )


def build_flavor(config: PrometheusConfig) -> Flavor:
    return dcgm_flavor(config) if config.flavor == "dcgm" else labwall_flavor(config)


@dataclass
class RemoteReading:
    """One host as Prometheus sees it now; `gpus` by index, in the snapshot's field names."""

    host: str
    gpus: dict[str, dict[str, Any]] = field(default_factory=dict)
    system: dict[str, Any] = field(default_factory=dict)
    instances: set[str] = field(default_factory=set)  # the scrape targets (instance label) it came from


def _index_key(index: str) -> tuple[int, str]:
    return (int(index), "") if index.isdigit() else (1 << 30, index)


def assemble(flavor: Flavor, results: dict[str, list[InstantSample]],
             host_selector: str = ".+") -> dict[str, RemoteReading]:
    """Host readings from one instant query per metric (`results`: Metric.key + scope → samples)."""
    hosts: dict[str, RemoteReading] = {}
    wanted = re.compile(host_selector)
    for metric in flavor.metrics:
        for sample in results.get(f"{metric.scope}:{metric.key}", []):
            name = flavor.host_of(sample.labels)
            if not name or not wanted.fullmatch(name):
                continue
            reading = hosts.get(name)
            if reading is None:
                reading = hosts[name] = RemoteReading(name)
            if "instance" in sample.labels:
                reading.instances.add(sample.labels["instance"])
            if metric.scope == "host":
                if not metric.key.startswith("_"):
                    reading.system[metric.key] = sample.value * metric.scale
                continue
            index = sample.labels.get("gpu")
            if index is None:
                continue
            gpu = reading.gpus.setdefault(index, {GpuField.INDEX: int(index) if index.isdigit() else index,
                                                  GpuField.UUID: None, GpuField.NAME: None, GpuField.STATUS: GPU_OK})
            for key, label in ((GpuField.UUID, flavor.uuid_label), (GpuField.NAME, flavor.name_label)):
                if sample.labels.get(label) and gpu[key] is None:
                    gpu[key] = sample.labels[label]
            if metric.key == "_gpu_up":
                gpu[GpuField.STATUS] = GPU_OK if sample.value >= 1 else GPU_LOST
            elif not metric.key.startswith("_"):
                gpu[metric.key] = sample.value * metric.scale
    for reading in hosts.values():
        reading.gpus = dict(sorted(reading.gpus.items(), key=lambda kv: _index_key(kv[0])))
        for gpu in reading.gpus.values():
            for key in GPU_FIELDS:
                gpu.setdefault(key, None)
    return hosts


def down_instances(samples: list[InstantSample]) -> set[str]:
    """The targets whose last scrape failed (`up == 0`)."""
    return {s.labels["instance"] for s in samples if s.value < 1 and "instance" in s.labels}


def sparklines(flavor: Flavor, series: list[RangeSeries], host_selector: str = ".+") -> dict[str, list[float]]:
    """Host → its mean GPU utilisation (%) over the lookback, one value per step."""
    wanted = re.compile(host_selector)
    found = {}
    for s in series:
        name = flavor.host_of(s.labels)
        if name and wanted.fullmatch(name):
            found[name] = [v for _, v in s.points]
    return found


def main_metric(metrics: dict[str, float]) -> str | None:
    """The metric a run card shows: `loss`, else the first `*loss*`, else the first by name."""
    if "loss" in metrics:
        return "loss"
    names = sorted(metrics)
    return next((m for m in names if "loss" in m), names[0] if names else None)


def assemble_runs(flavor: Flavor, results: dict[str, list[InstantSample]],
                  host_selector: str = ".+") -> list[dict[str, Any]]:
    """Run summaries (the runs panel's shape, plus `host`) from the run queries' answers."""
    wanted = re.compile(host_selector)
    runs: dict[tuple[str, str], dict[str, Any]] = {}
    for metric in flavor.runs:
        for sample in results.get(f"run:{metric.key}", []):
            host, run = flavor.host_of(sample.labels), sample.labels.get("run")
            if not host or not run or not wanted.fullmatch(host):
                continue
            entry = runs.setdefault((host, run), {"id": f"{host}/{run}", "run": run, "host": host, "name": run,
                                                  "status": None, "step": None, "updated": None, "metrics": {}})
            if metric.key == "_run_info":
                entry["name"] = sample.labels.get("name") or run
            elif metric.key == "_status":
                if sample.value >= 1:
                    entry["status"] = sample.labels.get("status")
            elif metric.key == "_metric":
                if sample.labels.get("metric"):
                    entry["metrics"][sample.labels["metric"]] = sample.value
            else:
                entry[metric.key] = sample.value
    for entry in runs.values():
        entry["main_metric"] = main_metric(entry["metrics"])
        entry["main_value"] = entry["metrics"].get(entry["main_metric"]) if entry["main_metric"] else None
    return sorted(runs.values(), key=lambda r: -(r["updated"] or 0.0))
