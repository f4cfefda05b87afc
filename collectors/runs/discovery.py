"""Find runs under the run roots: one run per real layout, not one per file.

A directory (at most `max_depth` levels below its root) is a run when it holds, in this order of
precedence (the first names the run's format; every recognised file in it belongs to the run):
- `hf_trainer`: a Hugging Face Trainer output dir: `trainer_state.json`, `training_args.bin` or
  `checkpoint-N/trainer_state.json`, or a `runs/` dir of event files beside a log with HF dict lines;
  its checkpoint-N/trainer_state.json, runs/*/events.out.tfevents.* and logs are ONE run;
- `lightning_csv`: a Lightning CSVLogger version dir (`version_N/metrics.csv`);
- `jsonl`: `*.jsonl` files;
- `csv`: `*.csv` files (or a `.log` whose first line is a CSV header naming epoch/step, Keras-style);
- `tensorboard`: `events.out.tfevents.*` files (one run per directory, as TensorBoard does);
- `text`: a text log (`*.log`, `*.out`, `*.err`, `*log*.txt`, ...) whose first 64 KiB hold metric
  pairs, dict lines, tqdm bars or a traceback.
The walk follows symlinks but never enters a directory twice (symlink loops are reported and
skipped), skips hidden and tool directories, reports unreadable ones and goes on. It is resumable
(`step(budget_s)`) so a slow network filesystem never blocks the collector for long.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field

from collectors.runs.formats.text_log import PAIR, TQDM, TRACEBACK

SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "wandb-cache", "lost+found"})
TEXT_SUFFIXES = (".log", ".out", ".err")
TEXT_TXT = re.compile(r"log|out|train|stdout|stderr|console", re.I)
VERSION_DIR = re.compile(r"version_\d+")
CHECKPOINT_DIR = re.compile(r"checkpoint-(\d+)")
CSV_HEADER = re.compile(r"^[A-Za-z_][\w ./-]*(,[A-Za-z_][\w ./-]*)+\r?$")
SNIFF_BYTES = 64 * 1024
EVENTS_PREFIX = "events.out.tfevents."


@dataclass
class RunLayout:
    path: str
    root: str
    format: str
    jsonl: list[str] = field(default_factory=list)
    csv: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    tfevents: list[str] = field(default_factory=list)
    trainer_state: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        rel = os.path.relpath(self.path, self.root)
        return os.path.basename(self.root.rstrip(os.sep)) if rel == "." else rel

    def files(self) -> list[str]:
        return [*self.jsonl, *self.csv, *self.text, *self.tfevents, *self.trainer_state]


class SniffCache:
    """Remembers which text files look like training logs, re-reading one only when it changed."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[int, int, str | None]] = {}

    def kind(self, path: str) -> str | None:
        """"text", "csv" (a CSV header) or None."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        cached = self._seen.get(path)
        if cached is not None and (cached[2] is not None or (cached[0], cached[1]) == (st.st_size, st.st_mtime_ns)):
            return cached[2]
        kind = _sniff(path)
        self._seen[path] = (st.st_size, st.st_mtime_ns, kind)
        return kind

    def forget_missing(self, alive: set[str]) -> None:
        for path in [p for p in self._seen if p not in alive]:
            del self._seen[path]


def _sniff(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError:
        return None
    text = head.decode("utf-8", errors="replace")
    first = text.split("\n", 1)[0]
    if CSV_HEADER.match(first) and re.search(r"(^|,)(epoch|step)(,|\r?$)", first):
        return "csv"
    if TRACEBACK in text or TQDM.search(text) or "{'loss'" in text or '{"loss"' in text:
        return "text"
    for line in text.splitlines()[:2000]:
        if len(PAIR.findall(line)) >= 2:
            return "text"
    return None


def is_candidate(name: str) -> bool:
    """Could a file of this name make a directory a run (or change its layout)?"""
    return (
        name.endswith((".jsonl", ".csv"))
        or name.startswith(EVENTS_PREFIX)
        or name in ("trainer_state.json", "training_args.bin", "hparams.yaml")
        or _is_text_log(name)
    )


def _is_text_log(name: str) -> bool:
    lower = name.lower()
    return lower.endswith(TEXT_SUFFIXES) or (lower.endswith(".txt") and bool(TEXT_TXT.search(lower[:-4])))


class DiscoveryWalk:
    """One walk over every root; call `step()` until it returns True, then read `layouts`."""

    def __init__(self, roots: list[str], max_depth: int, sniff: SniffCache) -> None:
        self.max_depth = max_depth
        self.sniff = sniff
        self.layouts: dict[str, RunLayout] = {}
        self.problems: dict[str, str] = {}
        self.missing_roots: list[str] = []
        self.dirs_seen = 0
        self.visited: set[str] = set()  # directories classified by this walk
        self.text_files: set[str] = set()  # text logs looked at (the sniff cache keeps only these)
        self._visited_ids: set[tuple[int, int]] = set()
        self._stack: list[tuple[str, str, int, bool]] = []
        for root in reversed(roots):
            root = os.path.abspath(root)
            if os.path.isdir(root):
                self._stack.append((root, root, 0, True))
            else:
                self.missing_roots.append(root)

    @classmethod
    def targeted(cls, starts: list[tuple[str, str, int, bool]], max_depth: int, sniff: SniffCache) -> DiscoveryWalk:
        """A walk of a few directories only: (path, root, depth below root, descend into subdirectories)."""
        walk = cls([], max_depth, sniff)
        walk._stack = list(reversed(starts))
        return walk

    @property
    def done(self) -> bool:
        return not self._stack

    def step(self, budget_s: float) -> bool:
        deadline = time.monotonic() + budget_s
        while self._stack:
            path, root, depth, descend = self._stack.pop()
            self._visit(path, root, depth, descend)
            if time.monotonic() > deadline:
                break
        return self.done

    def _visit(self, path: str, root: str, depth: int, descend: bool) -> None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            self.problems[path] = f"cannot be read ({exc.strerror or exc})"
            return
        key = (st.st_dev, st.st_ino)
        if key in self._visited_ids:
            if os.path.islink(path):
                self.problems[path] = "symlink loop or second link to a directory already walked: skipped"
            return
        self._visited_ids.add(key)
        self.visited.add(path)
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except PermissionError:
            self.problems[path] = "permission denied: skipped"
            return
        except OSError as exc:
            self.problems[path] = f"cannot be listed ({exc.strerror or exc}): skipped"
            return
        self.dirs_seen += 1
        files: dict[str, str] = {}
        dirs: dict[str, str] = {}
        for entry in entries:
            try:
                if entry.is_dir():
                    if not entry.name.startswith(".") and entry.name not in SKIP_DIRS:
                        dirs[entry.name] = entry.path
                elif entry.is_file():
                    files[entry.name] = entry.path
            except OSError:
                continue  # a dangling symlink or an entry that vanished meanwhile
        layout, claimed = self._classify(path, root, files, dirs)
        if layout is not None:
            self.layouts[path] = layout
        if descend and depth < self.max_depth:
            for name in sorted(dirs, reverse=True):
                if name not in claimed:
                    self._stack.append((dirs[name], root, depth + 1, True))

    def _classify(self, path: str, root: str, files: dict[str, str],
                  dirs: dict[str, str]) -> tuple[RunLayout | None, set[str]]:
        if CHECKPOINT_DIR.fullmatch(os.path.basename(path)) and path != root:
            return None, set(files)  # an HF checkpoint belongs to its output dir's run
        names = sorted(files)
        jsonl = [files[n] for n in names if n.endswith(".jsonl")]
        csvs = [files[n] for n in names if n.endswith(".csv")]
        events = [files[n] for n in names if n.startswith(EVENTS_PREFIX)]
        texts = [files[n] for n in names if _is_text_log(n)]
        sniffed = {p: self.sniff.kind(p) for p in texts}
        self.text_files.update(texts)
        csvs += [p for p, kind in sniffed.items() if kind == "csv"]
        texts = [p for p in texts if sniffed[p] != "csv"]
        checkpoints = [d for d in dirs if CHECKPOINT_DIR.fullmatch(d)]
        states = [files["trainer_state.json"]] if "trainer_state.json" in files else []
        for name in sorted(checkpoints, key=lambda d: int(d.split("-")[1])):
            candidate = os.path.join(dirs[name], "trainer_state.json")
            if os.path.isfile(candidate):
                states.append(candidate)
        hf_log = any(sniffed.get(p) == "text" and _has_hf_dicts(p) for p in texts)
        if states or "training_args.bin" in files or ("runs" in dirs and hf_log):
            hf_events = _event_files_below(dirs["runs"]) if "runs" in dirs else []
            layout = RunLayout(path, root, "hf_trainer", jsonl, csvs, texts, hf_events + events, states)
            return layout, {"runs", *checkpoints}
        if VERSION_DIR.fullmatch(os.path.basename(path)) and "metrics.csv" in files:
            return RunLayout(path, root, "lightning_csv", jsonl, csvs, texts, events), set()
        log_texts = [p for p in texts if sniffed[p] == "text"]
        for fmt, present in (("jsonl", jsonl), ("csv", csvs), ("tensorboard", events), ("text", log_texts)):
            if present:
                return RunLayout(path, root, fmt, jsonl, csvs, texts if fmt != "text" else log_texts, events), set()
        return None, set()


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


def depth_below(path: str, root: str) -> int:
    """How many levels `path` lies below `root` (0: the root itself)."""
    rel = os.path.relpath(path, root)
    return 0 if rel == "." else rel.count(os.sep) + 1
