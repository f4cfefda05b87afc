"""The alert rules: what each one reads from the store and when its condition holds.

Each rule looks at one tick's readings and gives, per subject (a GPU, a disk, a run, a collector),
two conditions: `raising` (the threshold is crossed) and `holding` (still past the threshold minus
its hysteresis). The engine (monitor/alerts/engine.py) turns those into pending → active → cleared with the
rule's durations. A reading that is missing or stale is *unknown*: the alert keeps its state rather
than clearing (or raising) on data that says nothing.

XID errors are events, not states: the GPU collector puts each GPU's latest ones on its document
(`xid_errors`), and `gpu_xid` holds while one is younger than its `hold_s`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from collectors.gpu.xid import xid_text
from monitor.alerts.observation import Observation as Observation  # re-exported for the engine
from monitor.alerts.observation import RuleResult as RuleResult
from monitor.alerts.observation import duration_text as duration_text
from monitor.config import Config
from monitor.model.documents import (
    GPU_LOST,
    GPU_OK,
    DiskField,
    GpuDocumentField,
    GpuField,
    HostField,
    ProcessField,
    Source,
    XidField,
)
from monitor.model.store import Store

THERMAL_REASONS = ("hw_thermal_slowdown", "sw_thermal_slowdown")
HELD_MEMORY_MIN_BYTES = 1  # a listed compute process with unknown memory still holds a context
GIB = 1024**3


@dataclass(slots=True)
class _RunMemory:
    status: str
    had_writers: bool
    crashed_at: float | None = None


def holders(processes: list[dict[str, Any]]) -> list[str]:
    """Users holding GPU memory, largest holder first, each once."""
    users: list[str] = []
    for p in processes:
        user = p.get(ProcessField.USER) or "unknown user"
        if user not in users:
            users.append(user)
    return users


def _holding_memory(gpu: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        p for p in gpu.get(GpuField.PROCESSES) or []
        if p.get(ProcessField.GPU_MEMORY_BYTES) is None or p[ProcessField.GPU_MEMORY_BYTES] >= HELD_MEMORY_MIN_BYTES
    ]  # fmt: skip


def _gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


class AlertRules:
    """Evaluates every enabled rule against the store; keeps the little memory some rules need."""

    def __init__(self, config: Config, store: Store, exclude_collectors: tuple[str, ...] = ("alerts",)) -> None:
        self.config = config
        self.alerts = config.alerts
        self.store = store
        self.exclude_collectors = exclude_collectors
        self.seen_gpus: dict[int, str] = {}  # index → name of every GPU seen answering since start
        self._runs: dict[str, _RunMemory] = {}
        self._gpu_doc: dict[str, Any] | None = None
        self._runs_now: list[dict[str, Any]] | None = None
        self.rules: dict[str, Callable[[float], RuleResult]] = {
            name: fn for name, fn in (
                ("gpu_lost", self.gpu_lost), ("gpu_xid", self.gpu_xid), ("gpu_hot", self.gpu_hot),
                ("gpu_memory_full", self.gpu_memory_full),
                ("gpu_idle", self.gpu_idle), ("disk_full", self.disk_full), ("run_crashed", self.run_crashed),
                ("run_stalled", self.run_stalled), ("collector_down", self.collector_down),
            ) if getattr(self.alerts, name).enabled
        }  # fmt: skip

    def evaluate(self, now: float) -> dict[str, RuleResult]:
        self._gpu_doc = self._fresh(Source.GPU, now, self.config.gpu.interval_s)
        self._runs_now = None
        return {name: fn(now) for name, fn in self.rules.items()}

    # -- inputs -----------------------------------------------------------------------------------
    def _fresh(self, source: str, now: float, interval_s: float) -> dict[str, Any] | None:
        """The source's state document, or None when there is none or it is stale (older than
        stale_after_s, and at least 3 of its collector's intervals)."""
        found = self.store.state(source)
        if found is None or now - found[0] > max(self.alerts.stale_after_s, 3 * interval_s):
            return None
        doc = found[1]
        return doc if isinstance(doc, dict) else None

    def _gpus(self) -> list[dict[str, Any]] | None:
        """This tick's GPUs, or None when the reading is stale or the backend is not answering."""
        doc = self._gpu_doc
        if doc is None or doc.get(GpuDocumentField.STATE) != GPU_OK:
            return None
        return list(doc.get(GpuDocumentField.GPUS) or [])

    def _summaries(self, now: float) -> list[dict[str, Any]]:
        if self._runs_now is None:
            self._runs_now = self.store.runs.summaries()
            self._remember_runs(now, self._runs_now)
        return self._runs_now

    # -- GPU rules --------------------------------------------------------------------------------
    def gpu_lost(self, now: float) -> RuleResult:
        gpus = self._gpus()
        if gpus is None:
            return RuleResult(known=False)
        result = RuleResult()
        listed = set()
        for gpu in gpus:
            i = gpu[GpuField.INDEX]
            listed.add(i)
            lost = gpu.get(GpuField.STATUS) == GPU_LOST
            if not lost:
                self.seen_gpus[i] = gpu.get(GpuField.NAME) or "unknown"
            reason = gpu.get(GpuField.LOST_REASON) or "not answering"
            result.add(
                Observation(
                    f"gpu{i}",
                    f"GPU {i}",
                    f"GPU {i} lost",
                    lost,
                    lost,
                    f"GPU {i} lost: {reason}",
                    {"gpu": i, "uuid": gpu.get(GpuField.UUID)},
                )
            )
        for i, name in self.seen_gpus.items():
            if i not in listed:  # NVML lists fewer GPUs than it did: one fell off the bus
                result.add(
                    Observation(
                        f"gpu{i}",
                        f"GPU {i}",
                        f"GPU {i} lost",
                        True,
                        True,
                        f"GPU {i} ({name}) is no longer listed by the driver",
                        {"gpu": i},
                    )
                )
        return result

    def gpu_xid(self, now: float) -> RuleResult:
        gpus, rule = self._gpus(), self.alerts.gpu_xid
        if gpus is None:
            return RuleResult(known=False)
        result = RuleResult()
        for gpu in gpus:
            i = gpu[GpuField.INDEX]
            recent = [
                x for x in gpu.get(GpuField.XID_ERRORS) or []
                if now - x[XidField.TIME] < rule.hold_s and x[XidField.CODE] not in rule.ignore_codes
            ]  # fmt: skip
            if not recent:
                result.add(Observation(f"gpu{i}", f"GPU {i}", f"GPU {i} XID error", False, False))
                continue
            last, codes = recent[-1], sorted({x[XidField.CODE] for x in recent})
            message = xid_text(i, last[XidField.CODE])
            if len(recent) > 1:
                span = duration_text(now - recent[0]["time"])
                message += f" ({len(recent)} XIDs in the last {span}: {', '.join(map(str, codes))})"
            details = {"gpu": i, "uuid": gpu.get(GpuField.UUID), "codes": codes, "last_xid_at": last[XidField.TIME]}
            result.add(Observation(f"gpu{i}", f"GPU {i}", f"GPU {i} XID {last['code']}", True, True, message, details))
        return result

    def gpu_hot(self, now: float) -> RuleResult:
        gpus, rule, limit = self._gpus(), self.alerts.gpu_hot, self.config.thresholds.gpu_temp_c
        if gpus is None:
            return RuleResult(known=False)
        result = RuleResult()
        for gpu in gpus:
            i, temp = gpu[GpuField.INDEX], gpu.get(GpuField.TEMPERATURE_CELSIUS)
            reasons = gpu.get(GpuField.THROTTLE_REASONS)
            thermal = [r for r in reasons or () if r in THERMAL_REASONS] if rule.thermal_throttling else []
            if gpu.get(GpuField.STATUS) != GPU_OK or (temp is None and reasons is None):
                result.unknown.add(f"gpu{i}")
                continue
            raising = bool(thermal) or (temp is not None and temp >= limit)
            holding = bool(thermal) or (temp is not None and temp >= limit - rule.hysteresis_c)
            parts = [f"GPU {i} at {temp:.0f} °C (alert at {limit:g} °C)" if temp is not None else f"GPU {i}"]
            if thermal:
                parts.append(f"thermally throttling ({', '.join(thermal)})")
            result.add(
                Observation(
                    f"gpu{i}",
                    f"GPU {i}",
                    f"GPU {i} hot",
                    raising,
                    holding,
                    "; ".join(parts),
                    {"gpu": i, "temperature_celsius": temp, "throttle_reasons": thermal},
                )
            )
        return result

    def gpu_memory_full(self, now: float) -> RuleResult:
        gpus, rule, limit = self._gpus(), self.alerts.gpu_memory_full, self.config.thresholds.gpu_memory_ratio
        if gpus is None:
            return RuleResult(known=False)
        result = RuleResult()
        for gpu in gpus:
            i = gpu[GpuField.INDEX]
            used, total = gpu.get(GpuField.MEMORY_USED_BYTES), gpu.get(GpuField.MEMORY_TOTAL_BYTES)
            if gpu.get(GpuField.STATUS) != GPU_OK or used is None or not total:
                result.unknown.add(f"gpu{i}")
                continue
            ratio = used / total
            users = holders(gpu.get(GpuField.PROCESSES) or [])
            message = f"GPU {i} memory {ratio:.0%} full ({_gib(used)} of {_gib(total)})"
            message += f", held by {', '.join(users)}" if users else ""
            result.add(
                Observation(
                    f"gpu{i}",
                    f"GPU {i}",
                    f"GPU {i} memory full",
                    ratio >= limit,
                    ratio >= limit - rule.hysteresis_ratio,
                    message,
                    {"gpu": i, "used_ratio": ratio, "users": users},
                )
            )
        return result

    def gpu_idle(self, now: float) -> RuleResult:
        gpus, rule, t = self._gpus(), self.alerts.gpu_idle, self.config.thresholds
        if gpus is None:
            return RuleResult(known=False)
        idle_for = rule.for_s if rule.for_s is not None else t.gpu_idle_after_s
        result = RuleResult()
        for gpu in gpus:
            i, util = gpu[GpuField.INDEX], gpu.get(GpuField.UTILIZATION_GPU_PERCENT)
            if gpu.get(GpuField.STATUS) != GPU_OK or util is None:
                result.unknown.add(f"gpu{i}")
                continue
            held = _holding_memory(gpu)
            users = holders(held)
            memory = sum(p.get(ProcessField.GPU_MEMORY_BYTES) or 0 for p in held)
            message = (
                f"GPU {i} idle ({util:.0f} % utilization for over {duration_text(idle_for)}) "
                f"while {', '.join(users) or 'a process'} {'hold' if len(users) > 1 else 'holds'} {_gib(memory)}"
            )
            pids = [p.get(ProcessField.PID) for p in held]
            details = {"gpu": i, "users": users, "pids": pids, "memory_bytes": memory}
            idle, band = t.gpu_idle_util_percent, t.gpu_idle_util_percent + rule.hysteresis_percent
            result.add(
                Observation(
                    f"gpu{i}",
                    f"GPU {i}",
                    f"GPU {i} idle",
                    bool(held) and util < idle,
                    bool(held) and util < band,
                    message,
                    details,
                )
            )
        return result

    # -- disks ------------------------------------------------------------------------------------
    def disk_full(self, now: float) -> RuleResult:
        doc = self._fresh(Source.HOST, now, self.config.host.interval_s)
        rule, limit = self.alerts.disk_full, self.config.thresholds.disk_ratio
        if doc is None:
            return RuleResult(known=False)
        result = RuleResult()
        for disk in doc.get(HostField.DISKS) or []:
            path, ratio = str(disk.get(DiskField.PATH)), disk.get(DiskField.USED_RATIO)
            if ratio is None:  # {"path", "error"}: cannot be read now; the alert keeps its state
                result.unknown.add(path)
                continue
            free = disk.get(DiskField.FREE_BYTES)
            message = f"disk of {path} {ratio:.0%} full (alert at {limit:.0%})"
            message += f", {_gib(free)} free" if free is not None else ""
            result.add(
                Observation(
                    path,
                    path,
                    f"disk {path} full",
                    ratio >= limit,
                    ratio >= limit - rule.hysteresis_ratio,
                    message,
                    {"path": path, "used_ratio": ratio, "free_bytes": free},
                )
            )
        return result

    # -- runs -------------------------------------------------------------------------------------
    def _remember_runs(self, now: float, runs: list[dict[str, Any]]) -> None:
        """Track each run's status to date its crash: a crash found in the files dates from the files'
        last change (so old crashes found at start-up are not news); one seen happening (its writer
        exited) dates from when it was seen."""
        present = set()
        for run in runs:
            run_id, status = run["id"], run["status"]
            present.add(run_id)
            memory = self._runs.get(run_id)
            if memory is None:
                memory = self._runs[run_id] = _RunMemory(status, bool(run.get("writer_pids")))
                if status == "crashed":
                    memory.crashed_at = run.get("updated") or run.get("started") or now
                continue
            if status == "crashed" and memory.status != "crashed":
                files_at = run.get("updated") or run.get("started") or now
                memory.crashed_at = now if memory.had_writers else min(now, files_at)
            elif status != "crashed":
                memory.crashed_at = None
            memory.status = status
            memory.had_writers = memory.had_writers or bool(run.get("writer_pids"))
        for run_id in [r for r in self._runs if r not in present]:
            del self._runs[run_id]

    def run_crashed(self, now: float) -> RuleResult:
        rule, result = self.alerts.run_crashed, RuleResult()
        for run in self._summaries(now):
            memory = self._runs[run["id"]]
            crashed = run["status"] == "crashed" and memory.crashed_at is not None
            recent = crashed and now - (memory.crashed_at or now) < rule.active_s
            reason = run.get("status_reason") or "no reason found"
            result.add(
                Observation(
                    run["id"],
                    f"run {run['name']}",
                    f"run {run['name']} crashed",
                    recent,
                    recent,
                    f"run {run['name']} crashed: {reason}",
                    {"run_id": run["id"], "run": run["name"], "crashed_at": memory.crashed_at},
                )
            )
        return result

    def run_stalled(self, now: float) -> RuleResult:
        rule, result = self.alerts.run_stalled, RuleResult()
        for run in self._summaries(now):
            last = run.get("updated") or run.get("started") or now
            stalled = run["status"] == "stalled" and now - last < rule.max_age_s
            step = f" at step {run['step']}" if run.get("step") is not None else ""
            result.add(
                Observation(
                    run["id"],
                    f"run {run['name']}",
                    f"run {run['name']} stalled",
                    stalled,
                    stalled,
                    f"run {run['name']} stalled{step}: no new data for {duration_text(now - last)}",
                    {"run_id": run["id"], "run": run["name"], "last_data": last},
                )
            )
        return result

    # -- collectors -------------------------------------------------------------------------------
    def collector_down(self, now: float) -> RuleResult:
        """`error` (failing or hung) is down. `unavailable` (source absent, e.g. no NVIDIA driver) is
        down only once the collector has worked since start: a machine without GPUs is no alert."""
        result = RuleResult()
        for name, h in self.store.health().items():
            if name in self.exclude_collectors:
                continue
            state = h.get("state")
            down = state == "error" or (state == "unavailable" and h.get("last_sample") is not None)
            message = f"collector {name} {'failing' if state == 'error' else state}"
            message += f": {h['error']}" if h.get("error") else ""
            result.add(
                Observation(
                    name,
                    f"collector {name}",
                    f"collector {name} down",
                    down,
                    down,
                    message,
                    {"collector": name, "state": state},
                )
            )
        return result
