"""GPU collector: NVML (or its simulation) → per-GPU samples and the "gpu" state document.

NVML is initialised once in setup(); a missing driver makes the collector "unavailable" and the
thread retries setup() later, so loading the driver needs no restart. A GPU that stops answering
is marked lost on its own while the others keep updating, and is re-opened every tick until it
answers again. XID errors arrive as NVML events (collectors/gpu/xid.py), drained without waiting
each tick. NVML calls cost ~0.4 ms each, so what does not change is read every
`static_refresh_s`, ECC counters every `ecc_refresh_s`, clocks (not on the wall) every
`clock_refresh_s`, and the 20 ms PCIe sampling is rationed.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pynvml

from collectors.base import Collector, SourceUnavailable
from collectors.gpu.fields import (
    LIBRARY_CODES,
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
from collectors.gpu.processes import ProcessLookup
from collectors.gpu.redact import Redactor
from collectors.gpu.simulated import SimulatedNvml
from collectors.gpu.xid import KEPT_PER_GPU, XidEvents, xid_meaning, xid_text
from monitor.config import Config
from monitor.model.samples import SampleBatch
from monitor.model.store import Store

STATE_SOURCE = "gpu"

# state-document field → series name
SERIES: tuple[tuple[str, str], ...] = (
    ("utilization_gpu_percent", "gpu_utilization_percent"),
    ("utilization_memory_percent", "gpu_memory_utilization_percent"),
    ("memory_used_bytes", "gpu_memory_used_bytes"),
    ("memory_total_bytes", "gpu_memory_total_bytes"),
    ("temperature_celsius", "gpu_temperature_celsius"),
    ("power_draw_watts", "gpu_power_watts"),
    ("power_limit_watts", "gpu_power_limit_watts"),
    ("fan_percent", "gpu_fan_percent"),
)
CLOCK_SERIES = (
    ("clock_sm_mhz", "gpu_clock_sm_mhz"),
    ("clock_memory_mhz", "gpu_clock_memory_mhz"),
)
PCIE_SERIES = (
    ("pcie_rx_bytes_per_second", "gpu_pcie_rx_bytes_per_second"),
    ("pcie_tx_bytes_per_second", "gpu_pcie_tx_bytes_per_second"),
)
ECC_SERIES = (
    ("ecc_errors_corrected", "gpu_ecc_errors_corrected_total"),
    ("ecc_errors_uncorrected", "gpu_ecc_errors_uncorrected_total"),
)
READING_FIELDS = (
    *(f for f, _ in SERIES),
    *(f for f, _ in CLOCK_SERIES),
    "pstate",
    "throttle_reasons",
    *(f for f, _ in PCIE_SERIES),
    *(f for f, _ in ECC_SERIES),
)


class _LibraryGone(Exception):
    """NVML as a whole stopped answering (driver unloaded or replaced)."""


@dataclass(slots=True)
class _Device:
    index: int
    reader: DeviceReader | None = None
    static: dict[str, Any] = field(default_factory=lambda: {"name": "unknown", "uuid": ""})
    static_at: float = -math.inf
    ecc: tuple[int | None, int | None] = (None, None)
    ecc_at: float = -math.inf
    pcie: tuple[float | None, float | None] = (None, None)
    pcie_at: float = -math.inf
    clocks: tuple[int | None, int | None] = (None, None)
    clocks_at: float = -math.inf
    lost_reason: str | None = None
    xids: list[dict[str, Any]] = field(default_factory=list)  # the latest XIDs: {"time", "code", "meaning"}


def _due(last: float, now: float, every: float) -> bool:
    # A clock stepped back by more than a period must not freeze the refresh until it catches up.
    return now - last >= every or now < last - every


class GpuCollector(Collector):
    name = "gpu"

    def __init__(
        self,
        store: Store,
        interval_s: float,
        nvml: Any,
        *,
        backend: str = "nvml",
        processes: ProcessLookup | None = None,
        retry_s: float = 60.0,
        static_refresh_s: float = 30.0,
        ecc_refresh_s: float = 10.0,
        clock_refresh_s: float = 5.0,
        pcie_interval_s: float = 5.0,
        pcie_per_tick: int = 1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(store, interval_s)
        self.nvml = nvml
        self.backend = backend
        self.simulated = bool(getattr(nvml, "simulated", False))
        self.processes = processes if processes is not None else ProcessLookup()
        self.retry_s = retry_s
        self.static_refresh_s = static_refresh_s
        self.ecc_refresh_s = ecc_refresh_s
        self.clock_refresh_s = clock_refresh_s
        self.pcie_interval_s = pcie_interval_s
        self.pcie_per_tick = pcie_per_tick
        self.clock = clock
        self._initialized = False
        self._devices: list[_Device] = []
        self.xid = XidEvents(nvml)
        self._versions: dict[str, str | None] = {
            "driver_version": None,
            "nvml_version": None,
            "cuda_driver_version": None,
        }

    # -- lifecycle ---------------------------------------------------------------------------------
    def setup(self) -> None:
        self._shutdown()  # a re-setup after a failure must not stack NVML's init reference count
        try:
            self.nvml.nvmlInit()
        except self.nvml.NVMLError as exc:
            self._unavailable(describe_init_error(exc))
        self._initialized = True
        try:
            count = int(self.nvml.nvmlDeviceGetCount())
        except self.nvml.NVMLError as exc:
            self._shutdown()
            self._unavailable(describe_init_error(exc))
        if count <= 0:
            self._shutdown()
            self._unavailable(NO_GPU)
        self._versions = {
            "driver_version": text(self._optional(self.nvml.nvmlSystemGetDriverVersion)),
            "nvml_version": text(self._optional(self.nvml.nvmlSystemGetNVMLVersion)),
            "cuda_driver_version": cuda_version_text(
                self._optional(self.nvml.nvmlSystemGetCudaDriverVersion)
            ),
        }
        previous = {d.index: d for d in self._devices}
        self._devices = []
        now = self.clock()
        try:
            for index in range(count):
                device = _Device(index)
                if index in previous:  # keep what we knew, so a lost GPU is not announced twice
                    old = previous[index]
                    device.static, device.lost_reason, device.xids = old.static, old.lost_reason, old.xids
                self._devices.append(device)
                self._reopen(device, now)
        except _LibraryGone as exc:
            self._shutdown()
            self._unavailable(str(exc))
        self._update_degraded()

    def close(self) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        if self._initialized:
            self._initialized = False
            self.xid.release_all()
            with contextlib.suppress(self.nvml.NVMLError):  # the library may already be gone
                self.nvml.nvmlShutdown()

    def _optional(self, fn: Any) -> Any:
        try:
            return fn()
        except self.nvml.NVMLError:
            return None

    def _unavailable(self, reason: str) -> NoReturn:
        self.health.detail = {k: v for k, v in self.health.detail.items() if k != "degraded"}
        self.store.set_state(STATE_SOURCE, self._document("unavailable", reason, []), self.clock())
        raise SourceUnavailable(reason, retry_s=self.retry_s)

    # -- one tick ----------------------------------------------------------------------------------
    def collect(self, now: float) -> None:
        if not self._initialized:
            self.setup()
        batch = self.batch(now)
        pcie_now = self._pcie_turns(now)
        since_us = int((now - max(2.0 * self.interval_s, 1.0)) * 1e6)
        self._drain_xids(now)
        try:
            gpus = [self._collect_device(d, now, batch, d.index in pcie_now, since_us) for d in self._devices]
        except _LibraryGone as exc:
            self._shutdown()
            self._unavailable(str(exc))
        self._update_degraded()
        self.push(batch)
        self.store.set_state(STATE_SOURCE, self._document("ok", None, gpus), now)

    def _drain_xids(self, now: float) -> None:
        for device in self._devices:
            for code in self.xid.drain(device.index):
                device.xids = [*device.xids, {"time": now, "code": code, "meaning": xid_meaning(code)}]
                device.xids = device.xids[-KEPT_PER_GPU:]
                self.store.events.add("error", "gpu", xid_text(device.index, code))

    def _pcie_turns(self, now: float) -> set[int]:
        """The GPUs whose PCIe counters are read this tick: the longest-waiting due ones, at most
        `pcie_per_tick`, because each reading blocks for 20 ms."""
        every = self.pcie_interval_s
        due = [d for d in self._devices if d.lost_reason is None and _due(d.pcie_at, now, every)]
        due.sort(key=lambda d: d.pcie_at)
        return {d.index for d in due[: self.pcie_per_tick]}

    def _collect_device(
        self, device: _Device, now: float, batch: SampleBatch, read_pcie_now: bool, since_us: int
    ) -> dict[str, Any]:
        if (device.lost_reason is not None or device.reader is None) and not self._reopen(device, now):
            return self._entry(device, None, [])
        reader = device.reader
        assert reader is not None
        try:
            if _due(device.static_at, now, self.static_refresh_s):
                reader.forget()  # re-probe fields that were unsupported or forbidden
                device.static, device.static_at = read_static(reader), now
            values = read_dynamic(reader)
            values["power_limit_watts"] = device.static.get("power_limit_watts")
            fresh_ecc = _due(device.ecc_at, now, self.ecc_refresh_s)
            if fresh_ecc:
                device.ecc, device.ecc_at = read_ecc(reader, device.static.get("ecc_enabled")), now
            fresh_clocks = _due(device.clocks_at, now, self.clock_refresh_s)
            if fresh_clocks:
                device.clocks, device.clocks_at = read_clocks(reader), now
            if read_pcie_now:
                device.pcie, device.pcie_at = read_pcie(reader), now
            found = read_processes(reader, since_us)
        except self.nvml.NVMLError as exc:
            self._check_library(exc)
            self._mark_lost(device, error_text(exc))
            return self._entry(device, None, [])
        values["pcie_rx_bytes_per_second"], values["pcie_tx_bytes_per_second"] = device.pcie
        values["ecc_errors_corrected"], values["ecc_errors_uncorrected"] = device.ecc
        values["clock_sm_mhz"], values["clock_memory_mhz"] = device.clocks
        labels = {"gpu": device.index, "uuid": device.static["uuid"]}
        for key, series in SERIES:
            batch.add(series, values[key], **labels)
        for key, series in PCIE_SERIES if read_pcie_now else ():
            batch.add(series, values[key], **labels)
        for key, series in ECC_SERIES if fresh_ecc else ():
            batch.add(series, values[key], **labels)
        for key, series in CLOCK_SERIES if fresh_clocks else ():
            batch.add(series, values[key], **labels)
        return self._entry(device, values, [self._process(*p) for p in found])

    def _process(self, pid: int, memory: int | None, sm: float | None, kind: str) -> dict[str, Any]:
        info = self.processes.lookup(pid)
        return {
            "pid": pid,
            "user": info.user,
            "command": info.command,
            "gpu_memory_bytes": memory,
            "sm_percent": sm,
            "type": kind,
        }

    # -- lost and found ----------------------------------------------------------------------------
    def _reopen(self, device: _Device, now: float) -> bool:
        """(Re-)get the device's handle and identity; True when it answers."""
        try:
            handle = self.nvml.nvmlDeviceGetHandleByIndex(device.index)
            reader = DeviceReader(self.nvml, handle)
            static = read_static(reader)
        except self.nvml.NVMLError as exc:
            self._check_library(exc)
            self._mark_lost(device, error_text(exc))
            return False
        device.reader, device.static, device.static_at = reader, static, now
        device.ecc_at = device.pcie_at = device.clocks_at = -math.inf
        note = self.xid.register(device.index, handle)  # once per (re)open: a reset GPU needs a new one
        if note is not None:
            self.store.events.add("info", "gpu", note)
        if device.lost_reason is not None:
            device.lost_reason = None
            self.store.events.add("info", "gpu", f"GPU {device.index} recovered")
        return True

    def _check_library(self, exc: BaseException) -> None:
        if error_code(exc) in LIBRARY_CODES:
            raise _LibraryGone(f"NVML stopped answering: {error_text(exc)}") from exc

    def _mark_lost(self, device: _Device, reason: str) -> None:
        device.reader = None
        if device.lost_reason is None:
            device.lost_reason = reason
            self.store.events.add("error", "gpu", f"GPU {device.index} lost: {reason}")

    def _update_degraded(self) -> None:
        lost = [f"GPU {d.index} lost: {d.lost_reason}" for d in self._devices if d.lost_reason is not None]
        detail = {k: v for k, v in self.health.detail.items() if k != "degraded"}
        if lost:
            detail["degraded"] = "; ".join(lost)
        # Replace rather than mutate: views read the dict from other threads.
        self.health.detail = detail

    # -- documents ---------------------------------------------------------------------------------
    def _entry(
        self, device: _Device, values: dict[str, Any] | None, processes: list[dict[str, Any]]
    ) -> dict[str, Any]:
        lost = device.lost_reason is not None
        entry: dict[str, Any] = {
            "index": device.index,
            "uuid": device.static.get("uuid") or "",
            "name": device.static.get("name") or "unknown",
            "status": "lost" if lost else "ok",
        }
        for key in READING_FIELDS:
            entry[key] = None if values is None else values.get(key)
        processes.sort(key=lambda p: (-(p["gpu_memory_bytes"] or 0), p["pid"]))
        entry["processes"] = processes
        entry["lost_reason"] = device.lost_reason
        entry["xid_errors"] = list(device.xids)
        return entry

    def _document(self, state: str, reason: str | None, gpus: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "simulated": self.simulated,
            "state": state,
            "reason": reason,
            **self._versions,
            "gpus": gpus,
        }


def load_scenario(path: Path) -> dict[str, Any]:
    """Read a simulated-GPU scenario file; a ValueError names the file and what is wrong with it."""
    try:
        scenario = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"gpu.simulated_scenario: cannot read {str(path)!r}: {exc}") from None
    if not isinstance(scenario, dict):
        raise ValueError(f"gpu.simulated_scenario: {str(path)!r} must hold a JSON object")
    return scenario


def build_gpu_collector(
    config: Config, store: Store, *, nvml: Any | None = None, scenario: dict[str, Any] | None = None
) -> Collector | None:
    """The GPU collector the configuration asks for, or None when GPUs are disabled.

    `nvml` replaces the backend's module (tests); `scenario` replaces config.gpu.simulated_scenario.
    Raises ValueError for a scenario that cannot be used."""
    gpu = config.gpu
    if not gpu.enabled:
        return None
    redactor = Redactor(config.redaction.extra_patterns)
    if nvml is None and gpu.backend == "simulated":
        path = getattr(gpu, "simulated_scenario", None)
        if scenario is None and path is not None:
            scenario = load_scenario(Path(path))
        try:
            nvml = SimulatedNvml(gpu.simulated_count, scenario=scenario)
        except ValueError as exc:
            raise ValueError(f"gpu.simulated_scenario: {exc}") from None
    elif nvml is None:
        nvml = pynvml
    # Simulated pids must never be looked up among the real processes of this machine.
    resolver = nvml.process_info if isinstance(nvml, SimulatedNvml) else None
    return GpuCollector(
        store,
        gpu.interval_s,
        nvml,
        backend=gpu.backend,
        processes=ProcessLookup(redactor, resolver),
        retry_s=gpu.nvml_retry_s,
    )
