"""The run join as the views show it: which run each GPU process writes, which GPUs each run uses.

The "gpu_runs" state document is written by collectors/join/collector.py; these helpers only read it and
the "gpu" document, and never change either (both are shared with every other view): they return
copies with the join's fields added.
"""

from __future__ import annotations

from typing import Any

from monitor.model.store import Store

STATE_SOURCE = "gpu_runs"


def join_document(store: Store) -> dict[str, Any]:
    state = store.state(STATE_SOURCE)
    return state[1] if state and isinstance(state[1], dict) else {}


def gpus_with_runs(gpus: list[dict[str, Any]], join_doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Copies of the GPU entries whose `processes[j]` carry `run_id` and `run_name` (None: unknown)."""
    by_pid: dict[int, dict[str, Any]] = join_doc.get("by_pid") or {}
    result = []
    for gpu in gpus:
        processes = [
            {**p, "run_id": by_pid.get(p.get("pid"), {}).get("run_id"),
             "run_name": by_pid.get(p.get("pid"), {}).get("run_name")}
            for p in gpu.get("processes") or []
        ]
        result.append({**gpu, "processes": processes})
    return result


def runs_with_gpu_readings(summaries: list[dict[str, Any]], store: Store) -> list[dict[str, Any]]:
    """Run summaries whose `gpus[]` entries also carry the GPU's current `utilization_gpu_percent`
    and the process's `gpu_memory_bytes` (the registry keeps only the GPU set, which rarely changes)."""
    if not any(s.get("gpus") for s in summaries):
        return summaries
    state = store.state("gpu")
    gpus = {g.get("index"): g for g in (state[1].get("gpus") or [] if state else []) if isinstance(g, dict)}
    for summary in summaries:
        entries = []
        for entry in summary.get("gpus") or []:
            gpu = gpus.get(entry.get("gpu")) or {}
            memory = next((p.get("gpu_memory_bytes") for p in gpu.get("processes") or []
                           if p.get("pid") == entry.get("pid")), None)
            entries.append({**entry, "gpu_memory_bytes": memory,
                            "utilization_gpu_percent": gpu.get("utilization_gpu_percent")})
        summary["gpus"] = entries  # summaries are fresh copies made for this answer
    return summaries
