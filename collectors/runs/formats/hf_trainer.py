"""Hugging Face Trainer output dirs, and their `trainer_state.json` (written at each checkpoint and by save_state()).

A directory is an `hf_trainer` run when it holds `trainer_state.json`, `training_args.bin` or
`checkpoint-N/trainer_state.json`, or a `runs/` dir of event files beside a log with HF dict lines;
its checkpoint-N/trainer_state.json files, runs/*/events.out.tfevents.* and logs are ONE run (a
checkpoint-N dir is never a run of its own). Its stdout log is read with HF's steps, its event tags
renamed as in trainer_state (train/loss -> loss, eval/loss -> eval_loss).

`log_history` entries carry their own `step`; every number in them is a point at that step (train
entries: loss, grad_norm, learning_rate, epoch; eval entries: eval_*; the last one train_runtime,
which marks the run finished). `max_steps` is the total. The file is rewritten in place, so a read
can catch it half-written: `TrainerStateError` (a `SnapshotError`) makes the source read it again.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any

from collectors.runs.format_spec import FileKind, Listing, Match, RunFormat
from collectors.runs.formats.params_files import load_tree
from collectors.runs.formats.text_log import FORMAT as TEXT_FORMAT
from collectors.runs.formats.text_log import text_log_source, text_logs
from collectors.runs.formats.tfevents import EVENTS_PREFIX, event_files, event_files_source
from collectors.runs.parsed import ParamValue, Parsed, SnapshotError, flatten_params, integral_step
from collectors.runs.sources import SnapshotSource, SourceSettings

SKIPPED_KEYS = frozenset({"step"})
PARAMS_FILES = ("config.json", "training_args.json", "adapter_config.json")
STATE_PARAMS = ("max_steps", "num_train_epochs", "logging_steps", "eval_steps", "save_steps", "train_batch_size",
                "trial_params")
CHECKPOINT_DIR = re.compile(r"checkpoint-(\d+)")
SNIFF_BYTES = 64 * 1024


class TrainerStateError(SnapshotError):
    pass


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
    flatten_params({k: state[k] for k in STATE_PARAMS if state.get(k) is not None}, "trainer", parsed.params)
    global_step = integral_step(state.get("global_step"))
    if global_step is not None or last_step is not None:
        parsed.progress.append((mtime, global_step if global_step is not None else last_step or 0))
    return {k: state.get(k) for k in ("global_step", "max_steps", "logging_steps", "epoch", "num_train_epochs")}


def hf_tag(tag: str) -> str:
    """HF Trainer's TensorBoardCallback names: train/loss -> loss, eval/loss -> eval_loss (as in trainer_state)."""
    head, _, rest = tag.partition("/")
    if not rest:
        return tag
    if head == "train":
        return rest
    if head in ("eval", "test"):
        return f"{head}_{rest}"
    return tag


def checkpoint_number(path: str) -> int:
    """Newest checkpoint last: its log_history is the most complete; the output dir's own file is the final one."""
    parent = os.path.basename(os.path.dirname(path))
    if parent.startswith("checkpoint-") and parent[11:].isdigit():
        return int(parent[11:])
    return 1 << 62


def open_trainer_states(run_dir: str, settings: SourceSettings) -> SnapshotSource:
    return SnapshotSource(run_dir, read_trainer_state, order=checkpoint_number)


def _has_hf_dicts(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError:
        return False
    return b"{'loss'" in head or b"{'train_runtime'" in head or b"{'eval_loss'" in head


def _event_files_below(runs_dir: str) -> list[str]:
    """HF's runs/<date>_<host>/events.out.tfevents.* (and one level deeper, e.g. add_hparams dirs)."""
    found: list[str] = []
    stack = [(runs_dir, 0)]
    while stack:
        path, depth = stack.pop()
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.name.startswith(EVENTS_PREFIX) and entry.is_file():
                    found.append(entry.path)
                elif depth < 2 and entry.is_dir() and not entry.name.startswith("."):
                    stack.append((entry.path, depth + 1))
            except OSError:
                continue
    return sorted(found)


def _is_checkpoint(listing: Listing) -> bool:
    return bool(CHECKPOINT_DIR.fullmatch(listing.name)) and not listing.is_root


def _recognise(listing: Listing) -> Match | None:
    files, dirs = listing.files, listing.dirs
    checkpoints = [d for d in dirs if CHECKPOINT_DIR.fullmatch(d)]
    states = [files["trainer_state.json"]] if "trainer_state.json" in files else []
    for name in sorted(checkpoints, key=lambda d: int(d.split("-")[1])):
        candidate = os.path.join(dirs[name], "trainer_state.json")
        if os.path.isfile(candidate):
            states.append(candidate)
    hf_log = "runs" in dirs and any(
        listing.sniffed.get(p) == TEXT_FORMAT.name and _has_hf_dicts(p) for p in text_logs(listing)
    )
    if not (states or "training_args.bin" in files or hf_log):
        return None
    events = _event_files_below(dirs["runs"]) if "runs" in dirs else []
    params = listing.named(lambda name: name in PARAMS_FILES)  # trainer_state's own settings: read_trainer_state
    return Match(files={HF_EVENTS.name: events + event_files(listing), TRAINER_STATES.name: states},
                 claimed_dirs=frozenset({"runs", *checkpoints}), hyperparameters=tuple(params))


def read_params(path: str, data: bytes) -> dict[str, ParamValue]:
    """config.json / training_args.json / adapter_config.json, flattened under the file's name."""
    tree = load_tree(path, data)
    return flatten_params(tree, os.path.basename(path).removesuffix(".json")) if isinstance(tree, dict) else {}


TRAINER_STATES = FileKind("trainer_state", "snapshot", open_trainer_states, grouped=True)
HF_EVENTS = event_files_source(rename=hf_tag)

FORMAT = RunFormat(
    name="hf_trainer",
    precedence=10,
    recognise=_recognise,
    is_candidate=lambda name: name in ("trainer_state.json", "training_args.bin", *PARAMS_FILES),
    files=TRAINER_STATES,
    reads=(text_log_source(metrics=True, hf=True), HF_EVENTS),  # its stdout log is the run's own record
    part_of_run=_is_checkpoint,
    file_depth=2,  # runs/<date>_<host>/events..., checkpoint-N/trainer_state.json
    read_params=read_params,
)
