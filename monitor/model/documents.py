"""The state documents in the store: the one place that names each document and each of its fields.

A collector replaces its document whole each tick (`Store.set_state(Source.X, document)`); views
read the latest one. Each document is a TypedDict below, and each field's key is also a constant
(`GpuField.UTILIZATION_GPU_PERCENT == "utilization_gpu_percent"`), so code that reads or writes a
field spells it through this module. The keys are part of the API (/api/snapshot shows the
documents as they are): rename one only together with the README's API section.
Numbers are finite floats/ints or None for "unknown" (monitor/model/numbers.py).
"""

from __future__ import annotations

from typing import Any, Final, NotRequired, Protocol, TypedDict, cast


class Source:
    """The names of the state documents (`Store.state(name)`)."""

    GPU: Final = "gpu"  # GpuDocument, written by collectors/gpu
    HOST: Final = "system"  # HostReading, written by collectors/host.py
    GPU_RUNS: Final = "gpu_runs"  # GpuRunsDocument, written by collectors/join
    ALERTS: Final = "alerts"  # the alert engine's document (monitor/alerts/engine.py)
    LAB_USAGE: Final = "lab_usage"  # LabUsageDocument, written by collectors/prometheus (labwall flavor)


# -- "gpu" ---------------------------------------------------------------------------------------
class XidError(TypedDict):
    time: float
    code: int
    meaning: str


class GpuProcess(TypedDict):
    pid: int
    user: str | None
    command: str | None  # redacted
    gpu_memory_bytes: int | None
    sm_percent: float | None
    type: str  # "compute" or "graphics"
    run_id: NotRequired[str | None]  # added by the views from the run join (run_gpus.gpus_with_runs)
    run_name: NotRequired[str | None]


class GpuReading(TypedDict):
    index: int
    uuid: str
    name: str
    status: str  # "ok" or "lost"
    utilization_gpu_percent: float | None
    utilization_memory_percent: float | None
    memory_used_bytes: int | None
    memory_total_bytes: int | None
    temperature_celsius: float | None
    power_draw_watts: float | None
    power_limit_watts: float | None
    fan_percent: float | None
    clock_sm_mhz: int | None
    clock_memory_mhz: int | None
    pstate: str | None
    throttle_reasons: list[str] | None
    pcie_rx_bytes_per_second: float | None
    pcie_tx_bytes_per_second: float | None
    ecc_errors_corrected: int | None
    ecc_errors_uncorrected: int | None
    processes: list[GpuProcess]
    lost_reason: str | None
    xid_errors: list[XidError]


class GpuDocument(TypedDict):
    backend: str
    simulated: bool
    state: str  # "ok" or "unavailable"
    reason: str | None
    driver_version: str | None
    nvml_version: str | None
    cuda_driver_version: str | None
    gpus: list[GpuReading]


class GpuField:
    """The keys of a GpuReading."""

    INDEX: Final = "index"
    UUID: Final = "uuid"
    NAME: Final = "name"
    STATUS: Final = "status"
    UTILIZATION_GPU_PERCENT: Final = "utilization_gpu_percent"
    UTILIZATION_MEMORY_PERCENT: Final = "utilization_memory_percent"
    MEMORY_USED_BYTES: Final = "memory_used_bytes"
    MEMORY_TOTAL_BYTES: Final = "memory_total_bytes"
    TEMPERATURE_CELSIUS: Final = "temperature_celsius"
    POWER_DRAW_WATTS: Final = "power_draw_watts"
    POWER_LIMIT_WATTS: Final = "power_limit_watts"
    FAN_PERCENT: Final = "fan_percent"
    CLOCK_SM_MHZ: Final = "clock_sm_mhz"
    CLOCK_MEMORY_MHZ: Final = "clock_memory_mhz"
    PSTATE: Final = "pstate"
    THROTTLE_REASONS: Final = "throttle_reasons"
    PCIE_RX_BYTES_PER_SECOND: Final = "pcie_rx_bytes_per_second"
    PCIE_TX_BYTES_PER_SECOND: Final = "pcie_tx_bytes_per_second"
    ECC_ERRORS_CORRECTED: Final = "ecc_errors_corrected"
    ECC_ERRORS_UNCORRECTED: Final = "ecc_errors_uncorrected"
    PROCESSES: Final = "processes"
    LOST_REASON: Final = "lost_reason"
    XID_ERRORS: Final = "xid_errors"


class ProcessField:
    """The keys of a GpuProcess."""

    PID: Final = "pid"
    USER: Final = "user"
    COMMAND: Final = "command"
    GPU_MEMORY_BYTES: Final = "gpu_memory_bytes"
    SM_PERCENT: Final = "sm_percent"
    TYPE: Final = "type"
    RUN_ID: Final = "run_id"
    RUN_NAME: Final = "run_name"


class XidField:
    """The keys of an XidError."""

    TIME: Final = "time"
    CODE: Final = "code"
    MEANING: Final = "meaning"


class GpuDocumentField:
    """The keys of the GpuDocument itself."""

    BACKEND: Final = "backend"
    SIMULATED: Final = "simulated"
    STATE: Final = "state"
    REASON: Final = "reason"
    DRIVER_VERSION: Final = "driver_version"
    NVML_VERSION: Final = "nvml_version"
    CUDA_DRIVER_VERSION: Final = "cuda_driver_version"
    GPUS: Final = "gpus"


GPU_OK: Final = "ok"  # GpuReading.status and GpuDocument.state when the reading worked
GPU_LOST: Final = "lost"
GPU_UNAVAILABLE: Final = "unavailable"


# -- "system" ------------------------------------------------------------------------------------
class DiskUsage(TypedDict):
    path: str  # a run root
    total_bytes: NotRequired[int]
    used_bytes: NotRequired[int]
    free_bytes: NotRequired[int]
    used_ratio: NotRequired[float]  # used / (used + free), as df
    error: NotRequired[str]  # instead of the sizes, when the filesystem cannot be read


class HostReading(TypedDict):
    cpu_percent: float
    cpu_per_core_percent: list[float]
    cpu_count: int
    load_average: list[float]  # 1, 5, 15 min
    memory_total_bytes: int
    memory_used_bytes: int
    memory_available_bytes: int
    memory_percent: float
    swap_total_bytes: int
    swap_used_bytes: int
    swap_percent: float
    disk_read_bytes_per_second: float | None
    disk_write_bytes_per_second: float | None
    net_rx_bytes_per_second: float | None
    net_tx_bytes_per_second: float | None
    temperatures: dict[str, float] | None  # "<chip>/<label>" → °C
    cpu_temperature_celsius: float | None
    disks: list[DiskUsage]
    uptime_s: float
    boot_time: float


class HostField:
    """The keys of a HostReading."""

    CPU_PERCENT: Final = "cpu_percent"
    CPU_PER_CORE_PERCENT: Final = "cpu_per_core_percent"
    CPU_COUNT: Final = "cpu_count"
    LOAD_AVERAGE: Final = "load_average"
    MEMORY_TOTAL_BYTES: Final = "memory_total_bytes"
    MEMORY_USED_BYTES: Final = "memory_used_bytes"
    MEMORY_AVAILABLE_BYTES: Final = "memory_available_bytes"
    MEMORY_PERCENT: Final = "memory_percent"
    SWAP_TOTAL_BYTES: Final = "swap_total_bytes"
    SWAP_USED_BYTES: Final = "swap_used_bytes"
    SWAP_PERCENT: Final = "swap_percent"
    DISK_READ_BYTES_PER_SECOND: Final = "disk_read_bytes_per_second"
    DISK_WRITE_BYTES_PER_SECOND: Final = "disk_write_bytes_per_second"
    NET_RX_BYTES_PER_SECOND: Final = "net_rx_bytes_per_second"
    NET_TX_BYTES_PER_SECOND: Final = "net_tx_bytes_per_second"
    TEMPERATURES: Final = "temperatures"
    CPU_TEMPERATURE_CELSIUS: Final = "cpu_temperature_celsius"
    DISKS: Final = "disks"
    UPTIME_S: Final = "uptime_s"
    BOOT_TIME: Final = "boot_time"


class DiskField:
    """The keys of a DiskUsage."""

    PATH: Final = "path"
    TOTAL_BYTES: Final = "total_bytes"
    USED_BYTES: Final = "used_bytes"
    FREE_BYTES: Final = "free_bytes"
    USED_RATIO: Final = "used_ratio"
    ERROR: Final = "error"


# -- "gpu_runs" ----------------------------------------------------------------------------------
class ProcessJoin(TypedDict):
    run_id: str | None
    run_name: str | None
    via: str | None  # how the process was matched to its run
    user: str | None
    reason: str | None  # why it is not joined (yet)


class RunPlacement(TypedDict):
    gpu: int
    uuid: str
    pid: int
    gpu_memory_bytes: int | None


class GpuRunsDocument(TypedDict):
    by_pid: dict[int, ProcessJoin]
    by_run: dict[str, list[RunPlacement]]
    time: float
    tick_s: float


class JoinField:
    """The keys of the GpuRunsDocument, a ProcessJoin and a RunPlacement."""

    BY_PID: Final = "by_pid"
    BY_RUN: Final = "by_run"
    TIME: Final = "time"
    TICK_S: Final = "tick_s"
    RUN_ID: Final = "run_id"
    RUN_NAME: Final = "run_name"
    VIA: Final = "via"
    USER: Final = "user"
    REASON: Final = "reason"
    GPU: Final = "gpu"
    UUID: Final = "uuid"
    PID: Final = "pid"
    GPU_MEMORY_BYTES: Final = "gpu_memory_bytes"


# -- "lab_usage" ---------------------------------------------------------------------------------
class LabUserUsage(TypedDict):
    user: str  # "" when the hosts' counters carry no user
    gpu_hours: float
    idle_gpu_hours: float


class LabUsageDocument(TypedDict):
    """GPU-hours per user over the last `window_s`, summed over every selected host by Prometheus."""

    time: float  # when Prometheus answered (the collector's reading time)
    window_s: float
    max_age_s: float  # older than this, the views fall back to this host's own numbers
    users: list[LabUserUsage]  # largest gpu_hours first


class LabUsageField:
    """The keys of a LabUsageDocument and a LabUserUsage."""

    TIME: Final = "time"
    WINDOW_S: Final = "window_s"
    MAX_AGE_S: Final = "max_age_s"
    USERS: Final = "users"
    USER: Final = "user"
    GPU_HOURS: Final = "gpu_hours"
    IDLE_GPU_HOURS: Final = "idle_gpu_hours"


# -- reading them --------------------------------------------------------------------------------
class StateReader(Protocol):
    def state(self, source: str) -> tuple[float, Any] | None: ...


def latest(store: StateReader, source: str) -> dict[str, Any]:
    """The latest document of `source`, or {} before its first reading (or if it is not a mapping)."""
    found = store.state(source)
    return found[1] if found and isinstance(found[1], dict) else {}


def gpu_document(store: StateReader) -> GpuDocument:
    """The "gpu" document; {} (no keys) before the GPU collector's first reading."""
    return cast(GpuDocument, latest(store, Source.GPU))


def gpu_readings(store: StateReader) -> list[GpuReading]:
    """The GPUs of the "gpu" document that are mappings; [] before the first reading."""
    return [g for g in latest(store, Source.GPU).get(GpuDocumentField.GPUS) or [] if isinstance(g, dict)]


def host_reading(store: StateReader) -> HostReading:
    """The "system" document; {} (no keys) before the host collector's first reading."""
    return cast(HostReading, latest(store, Source.HOST))


def gpu_runs_document(store: StateReader) -> GpuRunsDocument:
    """The "gpu_runs" document; {} (no keys) before the join's first tick."""
    return cast(GpuRunsDocument, latest(store, Source.GPU_RUNS))


def fields_of(names: type) -> set[str]:
    """The keys a field-name class (GpuField, …) names."""
    return {v for k, v in vars(names).items() if k.isupper() and isinstance(v, str)}
