"""The run join as the views show it: which run each GPU process writes, which GPUs each run uses.

The "gpu_runs" state document is written by collectors/join/collector.py; these helpers only read it and
the "gpu" document, and never change either (both are shared with every other view): they return
copies with the join's fields added.
"""

from __future__ import annotations

from typing import Any

from monitor.model.documents import GpuField, JoinField, ProcessField, Source, gpu_readings, latest
from monitor.model.store import Store


def join_document(store: Store) -> dict[str, Any]:
    return latest(store, Source.GPU_RUNS)


def gpus_with_runs(gpus: list[dict[str, Any]], join_doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Copies of the GPU entries whose `processes[j]` carry `run_id` and `run_name` (None: unknown)."""
    by_pid: dict[int, dict[str, Any]] = join_doc.get(JoinField.BY_PID) or {}
    result = []
    for gpu in gpus:
        processes = [
            {**p, ProcessField.RUN_ID: by_pid.get(p.get(ProcessField.PID), {}).get(JoinField.RUN_ID),
             ProcessField.RUN_NAME: by_pid.get(p.get(ProcessField.PID), {}).get(JoinField.RUN_NAME)}
            for p in gpu.get(GpuField.PROCESSES) or []
        ]
        result.append({**gpu, GpuField.PROCESSES: processes})
    return result


def runs_with_gpu_readings(summaries: list[dict[str, Any]], store: Store) -> list[dict[str, Any]]:
    """Run summaries whose `gpus[]` entries also carry the GPU's current `utilization_gpu_percent`
    and the process's `gpu_memory_bytes` (the registry keeps only the GPU set, which rarely changes)."""
    if not any(s.get("gpus") for s in summaries):
        return summaries
    gpus: dict[Any, Any] = {g.get(GpuField.INDEX): g for g in gpu_readings(store)}
    for summary in summaries:
        entries = []
        for entry in summary.get("gpus") or []:
            gpu = gpus.get(entry.get(JoinField.GPU)) or {}
            memory = next((p.get(ProcessField.GPU_MEMORY_BYTES) for p in gpu.get(GpuField.PROCESSES) or []
                           if p.get(ProcessField.PID) == entry.get(JoinField.PID)), None)
            entries.append({**entry, ProcessField.GPU_MEMORY_BYTES: memory,
                            GpuField.UTILIZATION_GPU_PERCENT: gpu.get(GpuField.UTILIZATION_GPU_PERCENT)})
        summary["gpus"] = entries  # summaries are fresh copies made for this answer
    return summaries
