"""What a run's page shows, as plain data: metric groups, compare candidates, the info texts."""

from __future__ import annotations

import os
import re
from typing import Any

from monitor.model.numbers import finite
from monitor.model.run_registry import RunRegistry, valid_run_id
from monitor.wall import format as fmt

GROUPS = ("train", "eval", "other")
EVAL_WORDS = {"eval", "val", "valid", "validation", "test", "dev"}
TRAIN_WORDS = {"train", "training", "loss"}
MAX_COMPARE = 5
MAX_SIBLINGS = 20


def metric_group(name: str) -> str:
    """train / eval / other by the words of the name (`eval/loss`, `val_acc`: eval; `train_loss`,
    `loss`: train; `lr`, `grad_norm`: other)."""
    words = set(re.split(r"[^a-z0-9]+", name.lower()))
    if words & EVAL_WORDS:
        return "eval"
    if words & TRAIN_WORDS or "loss" in name.lower():
        return "train"
    return "other"


def grouped(names: list[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {g: [] for g in GROUPS}
    for name in sorted(names):
        groups[metric_group(name)].append(name)
    return groups


def parse_compare(raw: str | None, run_id: str, registry: RunRegistry) -> tuple[list[str], list[str]]:
    """(known run ids to overlay, the parts of `compare` that are not known runs), in URL order."""
    known: list[str] = []
    unknown: list[str] = []
    for part in (raw or "").split(","):
        part = part.strip()
        if not part or part == run_id or part in known:
            continue
        if valid_run_id(part) and registry.get(part) is not None and len(known) < MAX_COMPARE:
            known.append(part)
        else:
            unknown.append(part[:60])
    return known, unknown[:MAX_COMPARE]


def siblings(registry: RunRegistry, run: dict[str, Any]) -> list[dict[str, Any]]:
    """Runs under the same parent directory (the runs one would compare with), newest first."""
    parent = os.path.dirname(str(run.get("path", "")))
    return [s for s in registry.summaries()
            if s["id"] != run["id"] and os.path.dirname(str(s.get("path", ""))) == parent][:MAX_SIBLINGS]


def compare_href(run_id: str, compare: list[str]) -> str:
    return f"/run/{run_id}" + (f"?compare={','.join(compare)}" if compare else "")


def step_text(run: dict[str, Any]) -> str:
    step, total = finite(run.get("step")), finite(run.get("total_steps"))
    if step is None:
        return "no step yet"
    text = f"step {step:.0f}"
    if total:
        text += f" / {total:.0f} ({100 * step / total:.0f} %)"
    return text


def rate_text(run: dict[str, Any]) -> str:
    rate = finite(run.get("rate_steps_per_s"))
    parts = [f"{rate:.3g} steps/s" if rate is not None else "rate n/a"]
    if run.get("status") in ("running", "stalled") and finite(run.get("eta_s")) is not None:
        parts.append(f"ETA {fmt.duration(run.get('eta_s'), coarse=True)}")
    return " · ".join(parts)


def when(t: Any) -> str:
    n = finite(t)
    return fmt.NA if n is None else f"{fmt.day(n)} {fmt.clock(n)}"


def history_rows(run: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(time, status, reason) per status transition, oldest first."""
    return [(when(h.get("time")), fmt.text(h.get("status")), fmt.text(h.get("reason"), ""))
            for h in run.get("history") or []]


def gpu_rows(run: dict[str, Any], gpu_doc: dict[str, Any] | None) -> list[tuple[str, str, str, str, str]]:
    """(GPU, utilisation, memory, user, command) for each GPU process the run join gave the run."""
    gpus = {g.get("index"): g for g in (gpu_doc or {}).get("gpus") or [] if isinstance(g, dict)}
    rows = []
    for entry in run.get("gpus") or []:
        gpu = gpus.get(entry.get("gpu")) or {}
        process = next((p for p in gpu.get("processes") or [] if p.get("pid") == entry.get("pid")), {})
        util = finite(gpu.get("utilization_gpu_percent"))
        rows.append((f"GPU {fmt.text(entry.get('gpu'), '?')}", fmt.NA if util is None else f"{util:.0f} %",
                     fmt.gib(process.get("gpu_memory_bytes")) + " GiB" if process.get("gpu_memory_bytes") else fmt.NA,
                     fmt.text(process.get("user")), fmt.text(process.get("command"))))
    return rows


def run_users(run_id: str, join_doc: dict[str, Any]) -> set[str]:
    """Users of the GPU processes the run join places in this run (a run has no owner otherwise)."""
    return {str(e["user"]) for e in (join_doc.get("by_pid") or {}).values()
            if isinstance(e, dict) and e.get("run_id") == run_id and e.get("user")}
