"""One GPU reading → who holds each GPU and with what share: the split rule of the usage accounting.

For each GPU that answers ("ok") and has processes, its processes are grouped by (user, run):
- share: the group's part of the GPU's memory held by all its processes (the GPU's time is split
  by memory, so the shares of a GPU add up to 1). A process whose memory is unknown (NVML did not
  say) counts as holding the mean of the known ones on that GPU; when none is known (or all are
  0), the GPU is split equally between its processes.
- idle: the GPU's utilisation is known and below `thresholds.gpu_idle_util_percent` (an unknown
  utilisation is neither idle nor busy).
- util: utilisation 0..1 (0 when unknown), for the utilisation-weighted "busy" seconds.
- power_w: the GPU's power draw (0 when unknown), split like the time.
User "" is a process whose owner is unknown; run "" is one the run join has not placed. A join
entry made for another user's process with the same pid (the pid was reused and the join has not
read the new process yet) is not trusted: the new process gets run "" until the join catches up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Holding:
    gpu: str
    uuid: str
    user: str
    run: str
    share: float  # 0..1 of the GPU's time
    idle: bool
    util: float  # 0..1
    power_w: float


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _run_of(process: dict[str, Any], user: str, by_pid: dict[Any, Any]) -> str:
    entry = by_pid.get(process.get("pid"))
    if not isinstance(entry, dict) or not entry.get("run_id"):
        return ""
    joined_user = entry.get("user")
    if joined_user is not None and user and joined_user != user:
        return ""  # the join read an earlier owner of this pid
    return str(entry["run_id"])


def memory_weights(memories: list[float | None]) -> list[float]:
    """Each process's weight in the split (see the module docstring); they add up to 1."""
    known = [m for m in memories if m is not None and m >= 0]
    total_known = sum(known)
    if total_known <= 0:
        return [1.0 / len(memories)] * len(memories)
    stand_in = total_known / len(known)
    weights = [m if m is not None and m >= 0 else stand_in for m in memories]
    total = sum(weights)
    return [w / total for w in weights]


def holdings(gpu_doc: dict[str, Any] | None, join_doc: dict[str, Any] | None,
             idle_util_percent: float) -> list[Holding]:
    """Who holds each GPU in this reading, one Holding per (GPU, user, run)."""
    by_pid = (join_doc or {}).get("by_pid") or {}
    found: list[Holding] = []
    for gpu in (gpu_doc or {}).get("gpus") or []:
        if not isinstance(gpu, dict) or gpu.get("status", "ok") != "ok":
            continue  # a lost GPU accrues nothing
        processes = [p for p in gpu.get("processes") or [] if isinstance(p, dict)]
        if not processes:
            continue
        util = _number(gpu.get("utilization_gpu_percent"))
        power = _number(gpu.get("power_draw_watts"))
        idle = util is not None and util < idle_util_percent
        weights = memory_weights([_number(p.get("gpu_memory_bytes")) for p in processes])
        groups: dict[tuple[str, str], float] = {}
        for process, weight in zip(processes, weights, strict=True):
            user = str(process.get("user") or "")
            key = (user, _run_of(process, user, by_pid))
            groups[key] = groups.get(key, 0.0) + weight
        index, uuid = str(gpu.get("index", "")), str(gpu.get("uuid") or "")
        util_ratio = min(max((util or 0.0) / 100.0, 0.0), 1.0)
        for (user, run), share in groups.items():
            found.append(Holding(index, uuid, user, run, share, idle, util_ratio, max(power or 0.0, 0.0)))
    return found
