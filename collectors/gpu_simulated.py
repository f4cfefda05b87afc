"""A simulated NVML: the subset of `pynvml` the GPU collector calls, for machines without a GPU.

Same function names, same units, and the real `pynvml` exception classes and constants, so the
collector handles the simulation and the real library identically. It says it is simulated
(`simulated = True`, driver version "simulated", GPU names ending in "(simulated)"). The GPUs,
their processes and values come from collectors.gpu_sim_model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pynvml

from collectors.gpu_sim_model import (
    GpuReading,
    SimGpu,
    SimProcess,
    default_gpus,
    events_from_scenario,
    gpus_from_scenario,
    load_at,
    lost_at,
    simulate,
)
from collectors.processes import ProcessInfo

SIMULATED_VERSION = "simulated"


@dataclass(frozen=True, slots=True)
class SimHandle:
    index: int


class SimulatedNvml:
    """Same function names as `pynvml` (nvmlInit, nvmlDeviceGet..., NVMLError_*, NVML_* constants)."""

    simulated = True
    NVMLError = pynvml.NVMLError

    def __init__(
        self,
        count: int = 4,
        scenario: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`count` generated GPUs, or the GPUs, processes and events of `scenario` (see
        collectors.gpu_sim_model.gpus_from_scenario / events_from_scenario)."""
        self.clock = clock
        self.gpus = gpus_from_scenario(scenario) if scenario is not None else default_gpus(count)
        self.events, self.repeat_s = events_from_scenario(scenario, len(self.gpus))
        self.started = clock()
        self._init_count = 0
        self._cache: dict[int, tuple[float, GpuReading]] = {}

    # -- hooks the test double overrides ------------------------------------------------------------
    def _system(self, fn: str) -> None:
        if self._init_count <= 0:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)

    def _device(self, index: int, fn: str) -> SimGpu:
        self._system(fn)
        if not 0 <= index < len(self.gpus):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        if self.events:
            elapsed = self.clock() - self.started
            if lost_at(self.events, index, elapsed % self.repeat_s if self.repeat_s else elapsed):
                raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        return self.gpus[index]

    def _handle(self, handle: SimHandle, fn: str) -> SimGpu:
        if not isinstance(handle, SimHandle):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return self._device(handle.index, fn)

    def _reading(self, gpu: SimGpu, t: float) -> GpuReading:
        # One tick asks a dozen functions within a millisecond: compute the device's values once.
        cached = self._cache.get(gpu.index)
        if cached is None or abs(cached[0] - t) > 0.1:
            cached = self._cache[gpu.index] = (t, simulate(gpu, t))
        return cached[1]

    def _processes(self, gpu: SimGpu, t: float) -> list[SimProcess]:
        load = load_at(gpu, t)
        total = sum(p.gpu_memory_bytes or 0 for p in gpu.processes) or 1
        for p in gpu.processes:  # SM share in proportion to memory: the big job does the work
            p.sm_percent = round(100.0 * load * (p.gpu_memory_bytes or 0) / total, 1)
        return gpu.processes

    def _values(self, handle: SimHandle, fn: str, *attrs: str) -> list[Any]:
        gpu = self._handle(handle, fn)
        reading = self._reading(gpu, self.clock())
        values = [getattr(reading, attr) for attr in attrs]
        if any(v is None for v in values):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return values

    def _value(self, handle: SimHandle, fn: str, attr: str) -> Any:
        return self._values(handle, fn, attr)[0]

    # -- library ----------------------------------------------------------------------------------
    def nvmlInit(self) -> None:
        self._init_count += 1

    def nvmlShutdown(self) -> None:
        self._system("nvmlShutdown")
        self._init_count -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._system("nvmlSystemGetDriverVersion")
        return SIMULATED_VERSION

    def nvmlSystemGetNVMLVersion(self) -> str:
        self._system("nvmlSystemGetNVMLVersion")
        return SIMULATED_VERSION

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._system("nvmlSystemGetCudaDriverVersion")
        return 12040

    def nvmlDeviceGetCount(self) -> int:
        self._system("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> SimHandle:
        self._device(index, "nvmlDeviceGetHandleByIndex")
        return SimHandle(index)

    # -- device: identity and limits ----------------------------------------------------------------
    def nvmlDeviceGetName(self, handle: SimHandle) -> str:
        return self._handle(handle, "nvmlDeviceGetName").name

    def nvmlDeviceGetUUID(self, handle: SimHandle) -> str:
        return self._handle(handle, "nvmlDeviceGetUUID").uuid

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: SimHandle) -> int:
        return self._value(handle, "nvmlDeviceGetEnforcedPowerLimit", "power_limit_mw")

    def nvmlDeviceGetEccMode(self, handle: SimHandle) -> list[int]:
        enabled = self._value(handle, "nvmlDeviceGetEccMode", "ecc_enabled")
        mode = pynvml.NVML_FEATURE_ENABLED if enabled else pynvml.NVML_FEATURE_DISABLED
        return [mode, mode]

    # -- device: readings -------------------------------------------------------------------------
    def nvmlDeviceGetUtilizationRates(self, handle: SimHandle) -> SimpleNamespace:
        fn = "nvmlDeviceGetUtilizationRates"
        gpu, memory = self._values(handle, fn, "utilization_gpu", "utilization_memory")
        return SimpleNamespace(gpu=gpu, memory=memory)

    def nvmlDeviceGetMemoryInfo(self, handle: SimHandle, version: int | None = None) -> SimpleNamespace:
        fn = "nvmlDeviceGetMemoryInfo"
        total, used = self._values(handle, fn, "memory_total_bytes", "memory_used_bytes")
        return SimpleNamespace(total=total, used=used, free=max(0, total - used))

    def nvmlDeviceGetTemperature(self, handle: SimHandle, sensor: int) -> int:
        return self._value(handle, "nvmlDeviceGetTemperature", "temperature_c")

    def nvmlDeviceGetTemperatureV(self, handle: SimHandle, sensor: int, version: int = 0) -> int:
        return self._value(handle, "nvmlDeviceGetTemperatureV", "temperature_c")

    def nvmlDeviceGetPowerUsage(self, handle: SimHandle) -> int:
        return self._value(handle, "nvmlDeviceGetPowerUsage", "power_mw")

    def nvmlDeviceGetFanSpeed(self, handle: SimHandle) -> int:
        return self._value(handle, "nvmlDeviceGetFanSpeed", "fan_percent")

    def nvmlDeviceGetClockInfo(self, handle: SimHandle, clock_type: int) -> int:
        attr = "clock_mem_mhz" if clock_type == pynvml.NVML_CLOCK_MEM else "clock_sm_mhz"
        return self._value(handle, "nvmlDeviceGetClockInfo", attr)

    def nvmlDeviceGetPerformanceState(self, handle: SimHandle) -> int:
        return self._value(handle, "nvmlDeviceGetPerformanceState", "pstate")

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: SimHandle) -> int:
        return self._value(handle, "nvmlDeviceGetCurrentClocksEventReasons", "clocks_event_reasons")

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: SimHandle) -> int:
        return self._value(handle, "nvmlDeviceGetCurrentClocksThrottleReasons", "clocks_event_reasons")

    def nvmlDeviceGetPcieThroughput(self, handle: SimHandle, counter: int) -> int:
        attr = "pcie_rx_kbps" if counter == pynvml.NVML_PCIE_UTIL_RX_BYTES else "pcie_tx_kbps"
        return self._value(handle, "nvmlDeviceGetPcieThroughput", attr)

    def nvmlDeviceGetTotalEccErrors(self, handle: SimHandle, error_type: int, counter_type: int) -> int:
        uncorrected = error_type == pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED
        attr = "ecc_uncorrected" if uncorrected else "ecc_corrected"
        return self._value(handle, "nvmlDeviceGetTotalEccErrors", attr)

    def _running(self, handle: SimHandle, fn: str, kind: str) -> list[SimpleNamespace]:
        gpu = self._handle(handle, fn)
        return [
            SimpleNamespace(
                pid=p.pid,
                usedGpuMemory=p.gpu_memory_bytes,
                gpuInstanceId=0xFFFFFFFF,
                computeInstanceId=0xFFFFFFFF,
            )
            for p in self._processes(gpu, self.clock())
            if p.type == kind
        ]

    def nvmlDeviceGetComputeRunningProcesses(self, handle: SimHandle) -> list[SimpleNamespace]:
        return self._running(handle, "nvmlDeviceGetComputeRunningProcesses", "compute")

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: SimHandle) -> list[SimpleNamespace]:
        return self._running(handle, "nvmlDeviceGetGraphicsRunningProcesses", "graphics")

    def nvmlDeviceGetProcessUtilization(self, handle: SimHandle, timestamp: int) -> list[SimpleNamespace]:
        gpu = self._handle(handle, "nvmlDeviceGetProcessUtilization")
        t = self.clock()
        samples = [
            SimpleNamespace(
                pid=p.pid, timeStamp=int(t * 1e6), smUtil=int(p.sm_percent), memUtil=0, encUtil=0, decUtil=0
            )
            for p in self._processes(gpu, t)
            if p.sm_percent is not None
        ]
        if not samples:  # NVML answers "not found" when no process ran in the window
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return samples

    # -- simulated processes ------------------------------------------------------------------------
    def process_info(self, pid: int) -> ProcessInfo:
        """The user and raw command of a simulated pid (a collectors.processes resolver)."""
        for gpu in self.gpus:
            for p in gpu.processes:
                if p.pid == pid:
                    return ProcessInfo(p.user, p.command)
        return ProcessInfo(None, None)  # never fall through to a real process that has this pid


# Expose the same constants and error classes as the real module.
_EXPOSED = ("NVML_", "NVMLError_", "nvmlClocksEventReason", "nvmlClocksThrottleReason", "nvmlMemory_v")
for _name in dir(pynvml):
    if _name.startswith(_EXPOSED):
        setattr(SimulatedNvml, _name, getattr(pynvml, _name))
