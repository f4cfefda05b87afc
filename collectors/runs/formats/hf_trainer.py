"""Hugging Face Trainer's `trainer_state.json` (written whole at each checkpoint, and by save_state()).

`log_history` entries carry their own `step`; every number in them is a point at that step (train
entries: loss, grad_norm, learning_rate, epoch; eval entries: eval_*; the last one train_runtime,
which marks the run finished). `max_steps` is the total. The file is rewritten in place, so a read
can catch it half-written: `TrainerStateError(half_written=True)` asks the caller to retry.
"""

from __future__ import annotations

import json
import math
from typing import Any

from collectors.runs.formats import Parsed, integral_step

SKIPPED_KEYS = frozenset({"step", "total_flos"})


class TrainerStateError(ValueError):
    def __init__(self, reason: str, line: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


def read_trainer_state(data: bytes, mtime: float, parsed: Parsed) -> dict[str, Any]:
    """Points of log_history into `parsed`; returns the state's other fields. Raises TrainerStateError."""
    try:
        state = json.loads(data)
    except UnicodeDecodeError as exc:
        raise TrainerStateError(f"not UTF-8 text (byte {exc.start})", 1) from None
    except json.JSONDecodeError as exc:
        raise TrainerStateError(f"invalid JSON: {exc.msg} at line {exc.lineno}", exc.lineno) from None
    if not isinstance(state, dict):
        raise TrainerStateError("not a JSON object", 1)
    max_steps = integral_step(state.get("max_steps"))
    if max_steps and max_steps > 0:
        parsed.total, parsed.total_is_end = max_steps, True
    history = state.get("log_history")
    if not isinstance(history, list):
        history = []
    last_step: int | None = None
    for index, entry in enumerate(history):
        if not isinstance(entry, dict):
            continue
        step = integral_step(entry.get("step"))
        if step is None:
            continue
        last_step = step
        found = False
        for key, value in entry.items():
            if key in SKIPPED_KEYS or type(value) not in (int, float):
                continue
            number = float(value)
            if not math.isfinite(number):
                parsed.add_bad(index + 1, f"log_history entry {index}: {key!r} is not finite")
                continue
            parsed.add_point(key, step, mtime, number)
            found = True
        if found:
            parsed.records += 1
        if "train_runtime" in entry:
            parsed.add_marker("end", f"train_runtime {entry['train_runtime']} s in trainer_state.json",
                              None, step)
    global_step = integral_step(state.get("global_step"))
    if global_step is not None or last_step is not None:
        parsed.progress.append((mtime, global_step if global_step is not None else last_step or 0))
    return {k: state.get(k) for k in ("global_step", "max_steps", "logging_steps", "epoch", "num_train_epochs")}
