"""GPU collector: a GPU backend (collectors/gpu/backend.py) → per-GPU samples and the "gpu" document.

The backend (NVML, its simulation, or another vendor's library) is started once in setup(); a
missing driver makes the collector "unavailable" and the thread retries setup() later, so loading
the driver needs no restart. A GPU that stops answering is marked lost on its own while the others
keep updating, and is re-opened every tick until it answers again. XID errors arrive as the
backend's device events, drained without waiting each tick. A library call costs ~0.4 ms (NVML),
so what does not change is read every `static_refresh_s`, ECC counters every `ecc_refresh_s`,
clocks (not on the wall) every `clock_refresh_s`, and the 20 ms PCIe sampling is rationed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from collectors.base import Collector, SourceUnavailable
from collectors.gpu.backend import BackendGone, BackendUnavailable, DeviceFault, GpuBackend, GpuDevice
from collectors.gpu.processes import ProcessLookup
from collectors.gpu.xid import KEPT_PER_GPU, xid_meaning, xid_text
from monitor.model.documents import GpuDocumentField, GpuField, ProcessField, Source
from monitor.model.samples import SampleBatch
from monitor.model.store import Store

STATE_SOURCE = Source.GPU

# state-document field → series name
SERIES: tuple[tuple[str, str], ...] = (
    (GpuField.UTILIZATION_GPU_PERCENT, "gpu_utilization_percent"),
    (GpuField.UTILIZATION_MEMORY_PERCENT, "gpu_memory_utilization_percent"),
    (GpuField.MEMORY_USED_BYTES, "gpu_memory_used_bytes"),
    (GpuField.MEMORY_TOTAL_BYTES, "gpu_memory_total_bytes"),
    (GpuField.TEMPERATURE_CELSIUS, "gpu_temperature_celsius"),
    (GpuField.POWER_DRAW_WATTS, "gpu_power_watts"),
    (GpuField.POWER_LIMIT_WATTS, "gpu_power_limit_watts"),
    (GpuField.FAN_PERCENT, "gpu_fan_percent"),
)
CLOCK_SERIES = (
    (GpuField.CLOCK_SM_MHZ, "gpu_clock_sm_mhz"),
    (GpuField.CLOCK_MEMORY_MHZ, "gpu_clock_memory_mhz"),
)
PCIE_SERIES = (
    (GpuField.PCIE_RX_BYTES_PER_SECOND, "gpu_pcie_rx_bytes_per_second"),
    (GpuField.PCIE_TX_BYTES_PER_SECOND, "gpu_pcie_tx_bytes_per_second"),
)
ECC_SERIES = (
    (GpuField.ECC_ERRORS_CORRECTED, "gpu_ecc_errors_corrected_total"),
    (GpuField.ECC_ERRORS_UNCORRECTED, "gpu_ecc_errors_uncorrected_total"),
)
READING_FIELDS = (
    *(f for f, _ in SERIES),
    *(f for f, _ in CLOCK_SERIES),
    "pstate",
    "throttle_reasons",
    *(f for f, _ in PCIE_SERIES),
    *(f for f, _ in ECC_SERIES),
)


@dataclass(slots=True)
class _Device:
    index: int
    opened: GpuDevice | None = None
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
        backend: GpuBackend,
        *,
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
        self.backend = backend
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
        self._versions: dict[str, str | None] = {
            "driver_version": None,
            "nvml_version": None,
            "cuda_driver_version": None,
        }

    # -- lifecycle ---------------------------------------------------------------------------------
    def setup(self) -> None:
        self._shutdown()  # a re-setup after a failure must not stack the library's init reference count
        try:
            self.backend.init()
        except BackendUnavailable as exc:
            self._unavailable(str(exc))
        self._initialized = True
        try:
            count = self.backend.device_count()
        except BackendUnavailable as exc:
            self._shutdown()
            self._unavailable(str(exc))
        self._versions = self.backend.versions()
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
        except BackendGone as exc:
            self._shutdown()
            self._unavailable(str(exc))
        self._update_degraded()

    def close(self) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        if self._initialized:
            self._initialized = False
            self.backend.shutdown()

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
        except BackendGone as exc:
            self._shutdown()
            self._unavailable(str(exc))
        self._update_degraded()
        self.push(batch)
        self.store.set_state(STATE_SOURCE, self._document("ok", None, gpus), now)

    def _drain_xids(self, now: float) -> None:
        for device in self._devices:
            for code in self.backend.drain_events(device.index):
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
        if (device.lost_reason is not None or device.opened is None) and not self._reopen(device, now):
            return self._entry(device, None, [])
        opened = device.opened
        assert opened is not None
        try:
            if _due(device.static_at, now, self.static_refresh_s):
                opened.forget()  # re-probe fields that were unsupported or forbidden
                device.static, device.static_at = opened.read_static(), now
            values = opened.read_dynamic()
            values["power_limit_watts"] = device.static.get("power_limit_watts")
            fresh_ecc = _due(device.ecc_at, now, self.ecc_refresh_s)
            if fresh_ecc:
                device.ecc, device.ecc_at = opened.read_ecc(device.static.get("ecc_enabled")), now
            fresh_clocks = _due(device.clocks_at, now, self.clock_refresh_s)
            if fresh_clocks:
                device.clocks, device.clocks_at = opened.read_clocks(), now
            if read_pcie_now:
                device.pcie, device.pcie_at = opened.read_pcie(), now
            found = opened.read_processes(since_us)
        except DeviceFault as exc:  # BackendGone goes up: every GPU is unavailable
            self._mark_lost(device, str(exc))
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
            ProcessField.PID: pid,
            ProcessField.USER: info.user,
            ProcessField.COMMAND: info.command,
            ProcessField.GPU_MEMORY_BYTES: memory,
            ProcessField.SM_PERCENT: sm,
            ProcessField.TYPE: kind,
        }

    # -- lost and found ----------------------------------------------------------------------------
    def _reopen(self, device: _Device, now: float) -> bool:
        """(Re-)get the device's handle and identity; True when it answers."""
        try:
            opened = self.backend.open(device.index)
            static = opened.read_static()
        except DeviceFault as exc:
            self._mark_lost(device, str(exc))
            return False
        device.opened, device.static, device.static_at = opened, static, now
        device.ecc_at = device.pcie_at = device.clocks_at = -math.inf
        note = self.backend.watch_events(device.index, opened)
        if note is not None:
            self.store.events.add("info", "gpu", note)
        if device.lost_reason is not None:
            device.lost_reason = None
            self.store.events.add("info", "gpu", f"GPU {device.index} recovered")
        return True

    def _mark_lost(self, device: _Device, reason: str) -> None:
        device.opened = None
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
            GpuField.INDEX: device.index,
            GpuField.UUID: device.static.get("uuid") or "",
            GpuField.NAME: device.static.get("name") or "unknown",
            GpuField.STATUS: "lost" if lost else "ok",
        }
        for key in READING_FIELDS:
            entry[key] = None if values is None else values.get(key)
        processes.sort(key=lambda p: (-(p[ProcessField.GPU_MEMORY_BYTES] or 0), p[ProcessField.PID]))
        entry[GpuField.PROCESSES] = processes
        entry[GpuField.LOST_REASON] = device.lost_reason
        entry[GpuField.XID_ERRORS] = list(device.xids)
        return entry

    def _document(self, state: str, reason: str | None, gpus: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            GpuDocumentField.BACKEND: self.backend.name,
            GpuDocumentField.SIMULATED: self.backend.simulated,
            GpuDocumentField.STATE: state,
            GpuDocumentField.REASON: reason,
            **self._versions,
            GpuDocumentField.GPUS: gpus,
        }

