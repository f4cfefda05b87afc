"""A simulated NVML module: the subset of `pynvml` the NVML backend calls, for machines without a GPU.

Same function names, same units, and the real `pynvml` exception classes and constants, so the
NVML backend's code reads the simulation and the real library identically: collectors/gpu/simulated.py
is that backend over this module, and tests/fake_nvml.py builds the NVML test double on it. It says
it is simulated (`simulated = True`, driver version "simulated", names ending in "(simulated)"). The GPUs,
their processes and values come from collectors.gpu.sim_model, and so do scheduled faults: a lost
GPU, a failing nvmlInit, a call that hangs, an XID error delivered through NVML's event sets.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml

from collectors.gpu.processes import ProcessInfo
from collectors.gpu.sim_model import (
    GpuReading,
    SimEvent,
    SimGpu,
    SimProcess,
    default_gpus,
    drop_exited,
    events_from_scenario,
    gpus_from_scenario,
    init_failing_at,
    load_at,
    lost_at,
    simulate,
)

SIMULATED_VERSION = "simulated"


@dataclass(frozen=True, slots=True)
class SimHandle:
    index: int


@dataclass(eq=False, slots=True)
class SimEventSet:
    """An nvmlEventSet_t: the event types registered per GPU and the events not yet waited for."""

    registered: dict[int, int] = field(default_factory=dict)  # GPU index → event type mask
    pending: deque[SimpleNamespace] = field(default_factory=deque)
    freed: bool = False


SUPPORTED_EVENT_TYPES = pynvml.nvmlEventTypeXidCriticalError
NO_INSTANCE = 0xFFFFFFFF


class SimulatedNvml:
    """Same function names as `pynvml` (nvmlInit, nvmlDeviceGet..., NVMLError_*, NVML_* constants)."""

    simulated = True
    NVMLError = pynvml.NVMLError

    def __init__(
        self,
        count: int = 4,
        scenario: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`count` generated GPUs, or the GPUs, processes and events of `scenario` (see
        collectors.gpu.sim_model.gpus_from_scenario / events_from_scenario)."""
        self.clock = clock
        self.sleep = sleep
        self.gpus = gpus_from_scenario(scenario) if scenario is not None else default_gpus(count)
        self.events, self.repeat_s = events_from_scenario(scenario, len(self.gpus))
        self.started = clock()
        self._init_count = 0
        self._cache: dict[int, tuple[float, GpuReading]] = {}
        self._event_sets: list[SimEventSet] = []
        self._fired: set[tuple[int, int]] = set()  # (repeat cycle, event index) of hangs and XIDs done
        self._lock = threading.Lock()

    # -- scheduled faults ---------------------------------------------------------------------------
    def _elapsed(self) -> tuple[float, int]:
        """Seconds into the scenario, and which replay (repeat_s) of it this is."""
        elapsed = self.clock() - self.started
        if self.repeat_s:
            return elapsed % self.repeat_s, int(elapsed // self.repeat_s)
        return elapsed, 0

    def _take_due(self, kind: str, index: int | None = None) -> list[SimEvent]:
        """The `kind` events (of GPU `index`) due now and not yet fired in this replay; each fires once."""
        if not any(e.kind == kind for e in self.events):
            return []
        elapsed, cycle = self._elapsed()
        due = []
        with self._lock:
            for k, event in enumerate(self.events):
                ok = event.kind == kind and (index is None or event.gpu == index)
                if ok and event.at_s <= elapsed and (cycle, k) not in self._fired:
                    self._fired.add((cycle, k))
                    due.append(event)
        return due

    def emit_xid(self, index: int, code: int) -> None:
        """Deliver an XID error of GPU `index` to every event set registered for it (as the driver does)."""
        with self._lock:
            for event_set in self._event_sets:
                if event_set.registered.get(index, 0) & pynvml.nvmlEventTypeXidCriticalError:
                    event_set.pending.append(
                        SimpleNamespace(
                            device=SimHandle(index),
                            eventType=pynvml.nvmlEventTypeXidCriticalError,
                            eventData=code,
                            gpuInstanceId=NO_INSTANCE,
                            computeInstanceId=NO_INSTANCE,
                        )
                    )

    # -- hooks the test double overrides ------------------------------------------------------------
    def _system(self, fn: str) -> None:
        if self._init_count <= 0:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)

    def _device(self, index: int, fn: str) -> SimGpu:
        self._system(fn)
        if not 0 <= index < len(self.gpus):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        if self.events:
            for hang in self._take_due("hang", index):  # the collector thread blocks, as on a wedged GPU
                self.sleep(hang.for_s or 0.0)
            if lost_at(self.events, index, self._elapsed()[0]):
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
            drop_exited(gpu)
            cached = self._cache[gpu.index] = (t, simulate(gpu, t))
        return cached[1]

    def _processes(self, gpu: SimGpu, t: float) -> list[SimProcess]:
        drop_exited(gpu)
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
        if self.events and init_failing_at(self.events, self._elapsed()[0]):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
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

    # -- events (XID errors) ------------------------------------------------------------------------
    def nvmlEventSetCreate(self) -> SimEventSet:
        self._system("nvmlEventSetCreate")
        event_set = SimEventSet()
        with self._lock:
            self._event_sets.append(event_set)
        return event_set

    def nvmlDeviceGetSupportedEventTypes(self, handle: SimHandle) -> int:
        self._handle(handle, "nvmlDeviceGetSupportedEventTypes")
        return SUPPORTED_EVENT_TYPES

    def nvmlDeviceRegisterEvents(self, handle: SimHandle, event_types: int, event_set: SimEventSet) -> None:
        gpu = self._handle(handle, "nvmlDeviceRegisterEvents")
        if not isinstance(event_set, SimEventSet) or event_set.freed:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        if event_types & ~SUPPORTED_EVENT_TYPES:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        with self._lock:
            event_set.registered[gpu.index] = event_set.registered.get(gpu.index, 0) | event_types

    def nvmlEventSetWait_v2(self, event_set: SimEventSet, timeout_ms: int) -> SimpleNamespace:
        self._system("nvmlEventSetWait_v2")
        if not isinstance(event_set, SimEventSet) or event_set.freed:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        for event in self._take_due("xid"):
            self.emit_xid(event.gpu or 0, event.code or 0)
        with self._lock:
            if event_set.pending:
                return event_set.pending.popleft()
        if timeout_ms > 0:
            self.sleep(timeout_ms / 1000.0)
        raise pynvml.NVMLError(pynvml.NVML_ERROR_TIMEOUT)

    def nvmlEventSetWait(self, event_set: SimEventSet, timeout_ms: int) -> SimpleNamespace:
        return self.nvmlEventSetWait_v2(event_set, timeout_ms)

    def nvmlEventSetFree(self, event_set: SimEventSet) -> None:
        self._system("nvmlEventSetFree")
        if not isinstance(event_set, SimEventSet) or event_set.freed:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        with self._lock:
            event_set.freed = True
            self._event_sets.remove(event_set)

    # -- simulated processes ------------------------------------------------------------------------
    def process_info(self, pid: int) -> ProcessInfo | None:
        """The user and raw command of a simulated pid (a collectors.gpu.processes resolver); None for a
        scenario process marked "real", which is then read from /proc like a real GPU's process."""
        for gpu in self.gpus:
            for p in gpu.processes:
                if p.pid == pid:
                    return None if p.real else ProcessInfo(p.user, p.command)
        return ProcessInfo(None, None)  # never fall through to a real process that has this pid


# Expose the same constants and error classes as the real module.
_EXPOSED = (
    "NVML_",
    "NVMLError_",
    "nvmlClocksEventReason",
    "nvmlClocksThrottleReason",
    "nvmlMemory_v",
    "nvmlEventType",
)
for _name in dir(pynvml):
    if _name.startswith(_EXPOSED):
        setattr(SimulatedNvml, _name, getattr(pynvml, _name))
