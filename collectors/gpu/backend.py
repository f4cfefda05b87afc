"""The GPU backend contract: what the GPU collector needs from a vendor's library, and nothing else.

A backend starts and stops the library, counts and opens devices, reads each device's fields in the
state document's names and units, and drains the devices' error events (NVIDIA's XIDs). It turns
the library's failures into the three errors below, so the collector never sees a vendor's
exception. Backends are declared: a module of collectors/gpu whose top level defines `BACKEND`
(a GpuBackendSpec) is selectable as `gpu.backend: <its name>`; register_backend() adds one at run time.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from collectors.gpu.processes import Resolver

Static = dict[str, Any]  # name, uuid, power_limit_watts, ecc_enabled
Dynamic = dict[str, Any]  # utilization_*, memory_*, temperature_celsius, power_draw_watts, fan, pstate, ...
Pair = tuple[Any, Any]  # (SM, memory) clocks; (rx, tx) PCIe; (corrected, uncorrected) ECC
ProcessReading = tuple[int, int | None, float | None, str]  # pid, GPU memory bytes, SM %, type


class GpuBackendError(Exception):
    """A failure of the GPU library; str(exc) is the reason shown on the wall and in /healthz."""


class BackendUnavailable(GpuBackendError):
    """The library cannot start or sees no GPU: the collector is "unavailable" and retries later."""


class NoDriver(BackendUnavailable):
    """No driver is installed or loaded (the usual state of a machine without GPUs)."""


class BackendGone(GpuBackendError):
    """The library as a whole stopped answering (driver unloaded or replaced): start it again."""


class DeviceFault(GpuBackendError):
    """One device did not answer: that GPU is shown lost and re-opened every tick."""


@runtime_checkable
class GpuDevice(Protocol):
    """One opened GPU. Readings are None where the device cannot tell; DeviceFault or BackendGone
    when it (or the library) stops answering."""

    def forget(self) -> None:
        """Probe again the fields found unsupported (called before each static refresh)."""

    def read_static(self) -> Static: ...

    def read_dynamic(self) -> Dynamic: ...

    def read_clocks(self) -> Pair: ...

    def read_pcie(self) -> Pair: ...

    def read_ecc(self, enabled: bool | None) -> Pair: ...

    def read_processes(self, since_us: int) -> list[ProcessReading]: ...


@runtime_checkable
class GpuBackend(Protocol):
    name: str  # gpu.backend and the document's "backend"
    simulated: bool  # the document's "simulated": the wall labels simulated GPUs

    def init(self) -> None:
        """Start the library; BackendUnavailable (NoDriver without a driver) when it cannot."""

    def shutdown(self) -> None:
        """Release the events and stop the library; never raises."""

    def device_count(self) -> int:
        """How many GPUs (at least 1); BackendUnavailable when none or the library fails."""

    def versions(self) -> dict[str, str | None]:
        """driver_version, nvml_version (the library's), cuda_driver_version; None where unknown."""

    def open(self, index: int) -> GpuDevice:
        """GPU `index`; DeviceFault or BackendGone when it does not answer."""

    def watch_events(self, index: int, device: GpuDevice) -> str | None:
        """(Re-)subscribe to the device's error events; a note when it cannot report them. Never raises."""

    def drain_events(self, index: int) -> list[int]:
        """The error codes (XIDs) GPU `index` reported since the last call; never waits."""

    def process_resolver(self) -> Resolver | None:
        """Who runs a pid, for a backend whose pids are not this machine's; None: read /proc."""


class GpuSettings(Protocol):
    """What a backend may read of the `gpu:` section (collectors/gpu/config.py), which checks backend
    names with this module: a protocol here instead of an import keeps the two free of a cycle."""

    backend: str
    simulated_count: int
    simulated_scenario: Path | None


@dataclass(frozen=True, slots=True)
class GpuBackendSpec:
    name: str  # the value of gpu.backend that selects it
    open: Callable[[GpuSettings], GpuBackend]  # a new backend for the section; ValueError for bad settings


_registered: dict[str, GpuBackendSpec] = {}


@functools.cache
def _declared() -> tuple[GpuBackendSpec, ...]:
    found = []
    for info in pkgutil.iter_modules([str(Path(__file__).parent)], "collectors.gpu."):
        spec = getattr(importlib.import_module(info.name), "BACKEND", None)
        if isinstance(spec, GpuBackendSpec):
            found.append(spec)
    return tuple(sorted(found, key=lambda s: s.name))


def gpu_backends() -> dict[str, GpuBackendSpec]:
    """name -> spec of every backend: the declared ones (by name), then the registered ones."""
    return {**{s.name: s for s in _declared()}, **_registered}


def register_backend(spec: GpuBackendSpec) -> None:
    """Make `spec` selectable by gpu.backend (a backend outside collectors/gpu, e.g. a plug-in)."""
    _registered[spec.name] = spec


def unregister_backend(name: str) -> None:
    _registered.pop(name, None)
