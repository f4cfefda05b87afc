"""The NVML backend: NVIDIA GPUs through `pynvml` (nvidia-ml-py), read by collectors/gpu/fields.py.

`nvml` is the pynvml module, or an object with its functions, classes and constants: the simulated
NVML (collectors/gpu/sim_nvml.py) and the test double (tests/fake_nvml.py). NVML's error codes are
turned into the backend errors here: the library-wide ones into BackendGone, any other error of a
device into DeviceFault, "not supported" and "no data yet" into None readings (fields.DeviceReader).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

import pynvml

from collectors.gpu.backend import (
    BackendGone,
    BackendUnavailable,
    DeviceFault,
    GpuBackendSpec,
    NoDriver,
    Pair,
    ProcessReading,
)
from collectors.gpu.fields import (
    LIBRARY_CODES,
    NO_DRIVER,
    NO_GPU,
    DeviceReader,
    cuda_version_text,
    describe_init_error,
    error_code,
    error_text,
    read_clocks,
    read_dynamic,
    read_ecc,
    read_pcie,
    read_processes,
    read_static,
    text,
)
from collectors.gpu.processes import Resolver
from collectors.gpu.xid import XidEvents

T = TypeVar("T")


def _unavailable(exc: BaseException) -> BackendUnavailable:
    reason = describe_init_error(exc)
    return NoDriver(reason) if reason == NO_DRIVER else BackendUnavailable(reason)


class NvmlDevice:
    """One GPU's handle and its field reader; every NVML error leaves as a backend error."""

    def __init__(self, nvml: Any, handle: Any) -> None:
        self.nvml = nvml
        self.handle = handle
        self.reader = DeviceReader(nvml, handle)

    def _read(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(self.reader, *args)
        except self.nvml.NVMLError as exc:
            raise device_error(exc) from exc

    def forget(self) -> None:
        self.reader.forget()

    def read_static(self) -> dict[str, Any]:
        return self._read(read_static)

    def read_dynamic(self) -> dict[str, Any]:
        return self._read(read_dynamic)

    def read_clocks(self) -> Pair:
        return self._read(read_clocks)

    def read_pcie(self) -> Pair:
        return self._read(read_pcie)

    def read_ecc(self, enabled: bool | None) -> Pair:
        return self._read(read_ecc, enabled)

    def read_processes(self, since_us: int) -> list[ProcessReading]:
        return self._read(read_processes, since_us)


def device_error(exc: BaseException) -> BackendGone | DeviceFault:
    if error_code(exc) in LIBRARY_CODES:
        return BackendGone(f"NVML stopped answering: {error_text(exc)}")
    return DeviceFault(error_text(exc))


class NvmlBackend:
    """GpuBackend over NVML; `nvml` defaults to the real library."""

    simulated = False

    def __init__(self, nvml: Any = pynvml, name: str = "nvml") -> None:
        self.nvml = nvml
        self.name = name
        self.xid = XidEvents(nvml)

    def init(self) -> None:
        try:
            self.nvml.nvmlInit()
        except self.nvml.NVMLError as exc:
            raise _unavailable(exc) from exc

    def shutdown(self) -> None:
        self.xid.release_all()
        with contextlib.suppress(self.nvml.NVMLError):  # the library may already be gone
            self.nvml.nvmlShutdown()

    def device_count(self) -> int:
        try:
            count = int(self.nvml.nvmlDeviceGetCount())
        except self.nvml.NVMLError as exc:
            raise _unavailable(exc) from exc
        if count <= 0:
            raise BackendUnavailable(NO_GPU)
        return count

    def versions(self) -> dict[str, str | None]:
        return {
            "driver_version": text(self._optional(self.nvml.nvmlSystemGetDriverVersion)),
            "nvml_version": text(self._optional(self.nvml.nvmlSystemGetNVMLVersion)),
            "cuda_driver_version": cuda_version_text(self._optional(self.nvml.nvmlSystemGetCudaDriverVersion)),
        }

    def _optional(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except self.nvml.NVMLError:
            return None

    def open(self, index: int) -> NvmlDevice:
        try:
            return NvmlDevice(self.nvml, self.nvml.nvmlDeviceGetHandleByIndex(index))
        except self.nvml.NVMLError as exc:
            raise device_error(exc) from exc

    def watch_events(self, index: int, device: Any) -> str | None:
        return self.xid.register(index, device.handle)  # once per (re)open: a reset GPU needs a new one

    def drain_events(self, index: int) -> list[int]:
        return self.xid.drain(index)

    def process_resolver(self) -> Resolver | None:
        return None


BACKEND = GpuBackendSpec("nvml", lambda section: NvmlBackend())
