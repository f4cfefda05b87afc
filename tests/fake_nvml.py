"""The NVML test double: a `pynvml`-like object with values and faults the tests set.

Built on SimulatedNvml (same function names, same real `pynvml` error classes) but every value is
fixed by the test, and every call can be made to fail:

    fake = FakeNvml(count=8)
    fake.readings[3].temperature_c = 91           # deterministic values, in NVML units
    fake.set_unsupported("nvmlDeviceGetFanSpeed")  # NVMLError_NotSupported (all GPUs, or index=i)
    fake.lose(3)                                   # NVMLError_GpuIsLost from GPU 3 (or code=...)
    fake.restore(3)
    fake.init_error = pynvml.NVML_ERROR_DRIVER_NOT_LOADED   # nvmlInit fails until set to None
    fake.library_error = pynvml.NVML_ERROR_UNINITIALIZED    # every call fails (driver unloaded)
    fake.crash["nvmlDeviceGetUtilizationRates"] = RuntimeError("boom")  # a non-NVML exception
    fake.xid(2, 79)                                # XID 79 on GPU 2, to the event sets registered for it
    fake.set_unsupported("nvmlDeviceRegisterEvents", index=1)  # GPU 1 cannot report XIDs
    fake.calls["nvmlDeviceGetName"]                # how often each function was called
"""

from __future__ import annotations

from collections import Counter

import pynvml

from collectors.gpu.sim_model import GIB, MIB, GpuReading, SimGpu, SimProcess
from collectors.gpu.sim_nvml import SimulatedNvml

DRIVER_VERSION = "550.54.15"
NVML_VERSION = "12.550.54.15"
CUDA_VERSION = 12040


def default_reading(index: int) -> GpuReading:
    """Distinct, round values per GPU so a test can tell which GPU a number came from."""
    return GpuReading(
        utilization_gpu=10 + index,
        utilization_memory=20 + index,
        memory_used_bytes=(index + 1) * GIB,
        memory_total_bytes=80 * GIB,
        temperature_c=40 + index,
        power_mw=100_000 + 1_000 * index,
        power_limit_mw=700_000,
        fan_percent=30 + index,
        clock_sm_mhz=1400 + index,
        clock_mem_mhz=2600 + index,
        pstate=0,
        clocks_event_reasons=0,
        pcie_rx_kbps=1000 * (index + 1),
        pcie_tx_kbps=500 * (index + 1),
        ecc_enabled=True,
        ecc_corrected=index,
        ecc_uncorrected=0,
    )


class FakeNvml(SimulatedNvml):
    simulated = False  # poses as the real library

    def __init__(self, count: int = 8) -> None:
        super().__init__(count=0, clock=lambda: 1_000_000.0)
        self.gpus = [
            SimGpu(i, f"Fake GPU {i}", f"GPU-fake-{i:04d}", 80 * GIB, 700.0, has_fan=True, phase=0.0)
            for i in range(count)
        ]
        self.readings = [default_reading(i) for i in range(count)]
        self.calls: Counter[str] = Counter()
        self.unsupported: set[tuple[int | None, str]] = set()
        self.lost: dict[int, int] = {}
        self.crash: dict[str, BaseException] = {}
        self.init_error: int | None = None
        self.library_error: int | None = None
        self.driver_version = DRIVER_VERSION

    # -- controls ---------------------------------------------------------------------------------
    def set_unsupported(self, fn: str, index: int | None = None) -> None:
        self.unsupported.add((index, fn))

    def lose(self, index: int, code: int = pynvml.NVML_ERROR_GPU_IS_LOST) -> None:
        self.lost[index] = code

    def restore(self, index: int) -> None:
        self.lost.pop(index, None)

    def xid(self, index: int, code: int) -> None:
        self.emit_xid(index, code)

    def add_process(
        self,
        index: int,
        pid: int,
        user: str,
        command: str,
        memory: int | None = 512 * MIB,
        sm_percent: float | None = None,
        kind: str = "compute",
    ) -> SimProcess:
        process = SimProcess(pid, user, command, memory, sm_percent, kind)
        self.gpus[index].processes.append(process)
        return process

    @property
    def initialized(self) -> int:
        """NVML's init reference count: 1 while the collector holds it, 0 after close()."""
        return self._init_count

    # -- hooks ------------------------------------------------------------------------------------
    def _fault(self, fn: str) -> None:
        self.calls[fn] += 1
        if fn in self.crash:
            raise self.crash[fn]
        if self.library_error is not None:
            raise pynvml.NVMLError(self.library_error)

    def _system(self, fn: str) -> None:
        self._fault(fn)
        super()._system(fn)

    def _device(self, index: int, fn: str) -> SimGpu:
        gpu = super()._device(index, fn)
        if index in self.lost:
            raise pynvml.NVMLError(self.lost[index])
        if (None, fn) in self.unsupported or (index, fn) in self.unsupported:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return gpu

    def _reading(self, gpu: SimGpu, t: float) -> GpuReading:
        return self.readings[gpu.index]

    def _processes(self, gpu: SimGpu, t: float) -> list[SimProcess]:
        return gpu.processes

    # -- library ----------------------------------------------------------------------------------
    def nvmlInit(self) -> None:
        self._fault("nvmlInit")
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)
        super().nvmlInit()

    def nvmlSystemGetDriverVersion(self) -> str:
        super().nvmlSystemGetDriverVersion()
        return self.driver_version

    def nvmlSystemGetNVMLVersion(self) -> str:
        super().nvmlSystemGetNVMLVersion()
        return NVML_VERSION

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        super().nvmlSystemGetCudaDriverVersion()
        return CUDA_VERSION
