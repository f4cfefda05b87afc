"""Per-field NVML readers for the GPU collector: error classes, unit conversion, throttle decoding.

Every reader turns "this device cannot tell" into None, never an exception and never NaN;
errors that mean the device or the whole library is gone are raised for the collector to handle.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import pynvml

from monitor.model.numbers import finite

T = TypeVar("T")

# The field does not exist on this device (or we may not read it): remembered until the next refresh.
UNSUPPORTED_CODES = frozenset(
    {
        pynvml.NVML_ERROR_NOT_SUPPORTED,
        pynvml.NVML_ERROR_FUNCTION_NOT_FOUND,
        pynvml.NVML_ERROR_NO_PERMISSION,
        pynvml.NVML_ERROR_INVALID_ARGUMENT,
        pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH,
    }
)
# No answer this time (no samples yet, busy); ask again next tick.
TRANSIENT_CODES = frozenset(
    {
        pynvml.NVML_ERROR_NOT_FOUND,
        pynvml.NVML_ERROR_NO_DATA,
        pynvml.NVML_ERROR_NOT_READY,
        pynvml.NVML_ERROR_TIMEOUT,
        pynvml.NVML_ERROR_INSUFFICIENT_SIZE,
        pynvml.NVML_ERROR_IN_USE,
    }
)
# The library itself is gone (driver unloaded, upgraded under us): every GPU is unavailable, re-init.
LIBRARY_CODES = frozenset(
    {
        pynvml.NVML_ERROR_UNINITIALIZED,
        pynvml.NVML_ERROR_DRIVER_NOT_LOADED,
        pynvml.NVML_ERROR_LIBRARY_NOT_FOUND,
        pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH,
    }
)
# Anything else from one device (GPU is lost, unknown error, reset required...) marks that GPU lost.

NO_DRIVER = "no NVIDIA driver found"
NO_GPU = "no NVIDIA GPU found"

THROTTLE_REASONS: tuple[tuple[int, str], ...] = (
    (0x001, "gpu_idle"),
    (0x002, "applications_clocks_setting"),
    (0x004, "sw_power_cap"),
    (0x008, "hw_slowdown"),
    (0x010, "sync_boost"),
    (0x020, "sw_thermal_slowdown"),
    (0x040, "hw_thermal_slowdown"),
    (0x080, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
    (0x200, "board_limit"),
    (0x400, "reliability"),
)

KIB = 1024
PSTATE_MAX = 15
NOT_AVAILABLE_ULL = 2**64 - 1


def error_code(exc: BaseException) -> int | None:
    value = getattr(exc, "value", None)
    return value if isinstance(value, int) else None


def error_text(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # pynvml's __str__ can itself fail for codes it does not know
        text = ""
    return text or type(exc).__name__


def describe_init_error(exc: BaseException) -> str:
    """A human reason for a failed nvmlInit, for the wall and /healthz."""
    code = error_code(exc)
    if code in (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, pynvml.NVML_ERROR_DRIVER_NOT_LOADED):
        return NO_DRIVER
    if code == pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH:
        return "NVIDIA driver and library versions differ (reload the driver or reboot)"
    if code == pynvml.NVML_ERROR_NO_PERMISSION:
        return "no permission to use the NVIDIA driver"
    return f"NVML initialisation failed: {error_text(exc)}"


def whole(value: Any) -> int | None:
    """A JSON-safe int (counters, bytes, MHz), or None; NVML's "not available" marker is None too."""
    number = finite(value)
    if number is None or number < 0 or number >= NOT_AVAILABLE_ULL:
        return None
    return int(number)


def text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def cuda_version_text(value: Any) -> str | None:
    """12040 → "12.4" (NVML encodes major * 1000 + minor * 10)."""
    number = whole(value)
    if number is None:
        return None
    return f"{number // 1000}.{(number % 1000) // 10}"


def pstate_name(value: Any) -> str | None:
    number = whole(value)
    return f"P{number}" if number is not None and number <= PSTATE_MAX else None


def decode_throttle_reasons(mask: Any) -> list[str] | None:
    number = whole(mask)
    if number is None:
        return None
    return [name for bit, name in THROTTLE_REASONS if number & bit]


class DeviceReader:
    """Calls one device's NVML functions; "not supported" answers are remembered until `forget()`,
    so a field the device lacks costs one call per refresh instead of one per tick."""

    def __init__(self, nvml: Any, handle: Any) -> None:
        self.nvml = nvml
        self.handle = handle
        self.unsupported: set[str] = set()

    def forget(self) -> None:
        self.unsupported.clear()

    def get(self, key: str, fn: Callable[..., T] | None, *args: Any) -> T | None:
        """fn(handle, *args), or None when the device cannot answer; device/library errors raise."""
        if fn is None or key in self.unsupported:
            return None
        try:
            return fn(self.handle, *args)
        except self.nvml.NVMLError as exc:
            code = error_code(exc)
            if code in UNSUPPORTED_CODES:
                self.unsupported.add(key)
                return None
            if code in TRANSIENT_CODES:
                return None
            raise

    def first(self, candidates: tuple[tuple[str, Callable[..., Any] | None], ...], *args: Any) -> Any:
        """The first of several names for one reading that this driver answers: newer NVML names
        are tried first and an older driver (FunctionNotFound) falls back to the older name."""
        for key, fn in candidates:
            if fn is None or key in self.unsupported:
                continue
            value = self.get(key, fn, *args)
            if value is not None or key not in self.unsupported:
                return value
        return None


def read_static(reader: DeviceReader) -> dict[str, Any]:
    """What never (or hardly ever) changes: read at setup and on each refresh."""
    nvml = reader.nvml
    ecc = reader.get("ecc_mode", nvml.nvmlDeviceGetEccMode)
    return {
        "name": text(reader.get("name", nvml.nvmlDeviceGetName)) or "unknown",
        "uuid": text(reader.get("uuid", nvml.nvmlDeviceGetUUID)) or "",
        "power_limit_watts": finite(reader.get("power_limit", nvml.nvmlDeviceGetEnforcedPowerLimit), 1e-3),
        "ecc_enabled": bool(ecc[0] == nvml.NVML_FEATURE_ENABLED) if ecc is not None else None,
    }


def read_dynamic(reader: DeviceReader) -> dict[str, Any]:
    """The per-tick readings of one device, in the state document's names and units."""
    nvml = reader.nvml
    # Newer names first: the older ones are deprecated and go away with CUDA 14 drivers.
    temperature = (
        ("temperature_v", getattr(nvml, "nvmlDeviceGetTemperatureV", None)),
        ("temperature", getattr(nvml, "nvmlDeviceGetTemperature", None)),
    )
    clock_reasons = (
        ("clock_events", getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)),
        ("clock_throttle", getattr(nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", None)),
    )
    # Memory v2 counts reserved memory apart from "used", as nvidia-smi does; v1 folds it in.
    v2 = getattr(nvml, "nvmlMemory_v2", None)
    memory_info = nvml.nvmlDeviceGetMemoryInfo
    memory_fns = (
        ("memory_v2", functools.partial(memory_info, version=v2) if v2 is not None else None),
        ("memory", memory_info),
    )
    util = reader.get("utilization", nvml.nvmlDeviceGetUtilizationRates)
    memory = reader.first(memory_fns)
    return {
        "utilization_gpu_percent": finite(getattr(util, "gpu", None)),
        "utilization_memory_percent": finite(getattr(util, "memory", None)),
        "memory_used_bytes": whole(getattr(memory, "used", None)),
        "memory_total_bytes": whole(getattr(memory, "total", None)),
        "temperature_celsius": finite(reader.first(temperature, nvml.NVML_TEMPERATURE_GPU)),
        "power_draw_watts": finite(reader.get("power", nvml.nvmlDeviceGetPowerUsage), 1e-3),
        "fan_percent": finite(reader.get("fan", nvml.nvmlDeviceGetFanSpeed)),
        "pstate": pstate_name(reader.get("pstate", nvml.nvmlDeviceGetPerformanceState)),
        "throttle_reasons": decode_throttle_reasons(reader.first(clock_reasons)),
    }


def read_clocks(reader: DeviceReader) -> tuple[int | None, int | None]:
    """(SM, memory) clocks in MHz: kept in the API and /metrics, not shown on the wall, so rationed."""
    nvml = reader.nvml
    sm = reader.get("clock_sm", nvml.nvmlDeviceGetClockInfo, nvml.NVML_CLOCK_SM)
    mem = reader.get("clock_mem", nvml.nvmlDeviceGetClockInfo, nvml.NVML_CLOCK_MEM)
    return whole(sm), whole(mem)


def read_pcie(reader: DeviceReader) -> tuple[float | None, float | None]:
    """(rx, tx) in bytes/s. Each call samples the bus for 20 ms, so the collector rations it."""
    nvml = reader.nvml
    rx = reader.get("pcie_rx", nvml.nvmlDeviceGetPcieThroughput, nvml.NVML_PCIE_UTIL_RX_BYTES)
    tx = reader.get("pcie_tx", nvml.nvmlDeviceGetPcieThroughput, nvml.NVML_PCIE_UTIL_TX_BYTES)
    return finite(rx, KIB), finite(tx, KIB)


def read_ecc(reader: DeviceReader, enabled: bool | None) -> tuple[int | None, int | None]:
    """(corrected, uncorrected) volatile ECC error counts since the driver loaded; None without ECC."""
    if not enabled:
        return None, None
    nvml = reader.nvml
    fn = nvml.nvmlDeviceGetTotalEccErrors
    corrected = reader.get("ecc_corrected", fn, nvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, nvml.NVML_VOLATILE_ECC)
    uncorrected = reader.get(
        "ecc_uncorrected", fn, nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nvml.NVML_VOLATILE_ECC
    )
    return whole(corrected), whole(uncorrected)


def read_processes(reader: DeviceReader, since_us: int) -> list[tuple[int, int | None, float | None, str]]:
    """(pid, gpu memory bytes, SM %, type) per process on the device; SM % needs process accounting
    support and is None where the device does not sample it."""
    nvml = reader.nvml
    found: dict[int, tuple[int | None, str]] = {}
    for kind, key, fn in (
        ("graphics", "graphics_processes", nvml.nvmlDeviceGetGraphicsRunningProcesses),
        ("compute", "compute_processes", nvml.nvmlDeviceGetComputeRunningProcesses),
    ):
        for proc in reader.get(key, fn) or []:
            pid = whole(getattr(proc, "pid", None))
            if pid is not None:  # a pid in both lists is reported as compute (listed last)
                found[pid] = (whole(getattr(proc, "usedGpuMemory", None)), kind)
    if not found:
        return []
    sm: dict[int, tuple[int, float | None]] = {}
    for sample in reader.get("process_utilization", nvml.nvmlDeviceGetProcessUtilization, since_us) or []:
        pid, stamp = whole(getattr(sample, "pid", None)), whole(getattr(sample, "timeStamp", None)) or 0
        value = finite(getattr(sample, "smUtil", None))
        if pid is not None and (pid not in sm or stamp >= sm[pid][0]):
            sm[pid] = (stamp, value if value is not None and 0 <= value <= 100 else None)
    return [(pid, memory, sm[pid][1] if pid in sm else None, kind) for pid, (memory, kind) in found.items()]
