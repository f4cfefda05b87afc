"""The names, help texts and labels of labwall's Prometheus metrics: one table shared by the /metrics
exporter, the `prometheus` source that reads them back and the benchmark's fake exporter.

Every series also has the `host` label (config `host_label`), which is not listed per metric.
Units follow Prometheus conventions: `_bytes`, `_seconds`, `_celsius`, `_watts`, `_ratio` (0..1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

HOST_LABEL = "host"


@dataclass(frozen=True, slots=True)
class MetricName:
    name: str  # for a counter, the full name with its `_total` suffix
    help: str
    labels: tuple[str, ...] = ()  # besides `host`
    kind: Literal["gauge", "counter"] = "gauge"

    @property
    def all_labels(self) -> tuple[str, ...]:
        return (HOST_LABEL, *self.labels)


GPU_LABELS = ("gpu", "uuid")

INFO = MetricName("labwall_info", "labwall exporter running (always 1); version in the label", ("version",))

GPU_INFO = MetricName("labwall_gpu_info", "GPU identity (always 1)", ("gpu", "uuid", "name"))
GPU_UP = MetricName("labwall_gpu_up", "1 when the GPU answers, 0 when it is lost", GPU_LABELS)
GPU_UTILIZATION = MetricName("labwall_gpu_utilization_ratio", "GPU (SM) utilization, 0..1", GPU_LABELS)
GPU_MEMORY_USED = MetricName("labwall_gpu_memory_used_bytes", "GPU memory in use", GPU_LABELS)
GPU_MEMORY_TOTAL = MetricName("labwall_gpu_memory_total_bytes", "GPU memory size", GPU_LABELS)
GPU_TEMPERATURE = MetricName("labwall_gpu_temperature_celsius", "GPU core temperature", GPU_LABELS)
GPU_POWER = MetricName("labwall_gpu_power_watts", "GPU power draw", GPU_LABELS)
GPU_POWER_LIMIT = MetricName("labwall_gpu_power_limit_watts", "GPU enforced power limit", GPU_LABELS)
GPU_PROCESS_MEMORY = MetricName(
    "labwall_gpu_process_memory_bytes",
    "GPU memory held by one process; run is the joined run's id, empty when not joined",
    (*GPU_LABELS, "pid", "user", "run"),
)

HOST_CPU = MetricName("labwall_host_cpu_utilization_ratio", "Host CPU utilization over all cores, 0..1")
HOST_MEMORY_USED = MetricName("labwall_host_memory_used_bytes", "Host memory in use (total - available)")
HOST_MEMORY_TOTAL = MetricName("labwall_host_memory_total_bytes", "Host memory size")
HOST_LOAD1 = MetricName("labwall_host_load1", "Host 1-minute load average")
HOST_DISK_USED = MetricName(
    "labwall_host_disk_used_ratio",
    "Used ratio (df's used / (used + free)) of the filesystem holding a run root; mountpoint is the root's path",
    ("mountpoint",),
)
HOST_NETWORK_RECEIVE = MetricName(
    "labwall_host_network_receive_bytes_total", "Bytes received by the host's physical interfaces", (), "counter"
)
HOST_NETWORK_TRANSMIT = MetricName(
    "labwall_host_network_transmit_bytes_total", "Bytes sent by the host's physical interfaces", (), "counter"
)

RUN_INFO = MetricName("labwall_run_info", "Training run identity (always 1)", ("run", "name", "root"))
RUN_STEP = MetricName("labwall_run_step", "Latest step of the run", ("run",))
RUN_STATUS = MetricName(
    "labwall_run_status", "1 for the run's current status (running, stalled, finished, crashed, deleted)",
    ("run", "status"),
)
RUN_METRIC = MetricName("labwall_run_metric", "Latest value of one metric of the run", ("run", "metric"))
RUN_LAST_UPDATE = MetricName(
    "labwall_run_last_update_timestamp_seconds", "Unix time of the run's latest data", ("run",)
)
RUN_BAD_LINES = MetricName(
    "labwall_run_bad_lines_total", "Lines of the run's files that could not be read", ("run",), "counter"
)

COLLECTOR_UP = MetricName("labwall_collector_up", "1 when the collector's last reading worked", ("collector",))
COLLECTOR_LAST_SUCCESS = MetricName(
    "labwall_collector_last_success_timestamp_seconds", "Unix time of the collector's last good reading",
    ("collector",),
)

GPU_USER_SECONDS = MetricName(
    "labwall_gpu_user_seconds_total",
    "GPU-seconds allocated to the user's processes, split by GPU memory share (closed minutes since start)",
    ("user",), "counter",
)
GPU_USER_IDLE_SECONDS = MetricName(
    "labwall_gpu_user_idle_seconds_total",
    "The part of labwall_gpu_user_seconds_total while the GPU's utilization was below the idle threshold",
    ("user",), "counter",
)
GPU_USER_ENERGY = MetricName(
    "labwall_gpu_user_energy_joules_total", "GPU energy (power x time) split like labwall_gpu_user_seconds_total",
    ("user",), "counter",
)

ALL: tuple[MetricName, ...] = (
    INFO,
    GPU_INFO, GPU_UP, GPU_UTILIZATION, GPU_MEMORY_USED, GPU_MEMORY_TOTAL, GPU_TEMPERATURE, GPU_POWER,
    GPU_POWER_LIMIT, GPU_PROCESS_MEMORY,
    HOST_CPU, HOST_MEMORY_USED, HOST_MEMORY_TOTAL, HOST_LOAD1, HOST_DISK_USED, HOST_NETWORK_RECEIVE,
    HOST_NETWORK_TRANSMIT,
    RUN_INFO, RUN_STEP, RUN_STATUS, RUN_METRIC, RUN_LAST_UPDATE, RUN_BAD_LINES,
    COLLECTOR_UP, COLLECTOR_LAST_SUCCESS,
    GPU_USER_SECONDS, GPU_USER_IDLE_SECONDS, GPU_USER_ENERGY,
)
