"""The run join's lookups: the known runs by directory, the paths a command line names, and the
files a process has open for writing. No state of its own beyond the index; used by run_join.py."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psutil

from collectors.runs.writers import PROC, _opened_for_writing, owning_run

# Flags (and hydra-style `key=value` keys, last dotted part) that name where a run writes.
OUTPUT_KEYS = frozenset({
    "output_dir", "output", "out_dir", "outdir", "logdir", "log_dir", "logging_dir", "default_root_dir",
    "root_dir", "run_dir", "rundir", "save_dir", "savedir", "checkpoint_dir", "ckpt_dir", "exp_dir",
    "experiment_dir", "work_dir", "workdir", "dir",
})


class JoinProcess(psutil.Process):
    """psutil's Process plus the files it has open for writing, read from /proc/PID/fd{,info} only:
    psutil's open_files() stats every file, and a hung network mount would hang the join with it."""

    def written_files(self, under: tuple[str, ...]) -> list[str]:
        """Files below one of the `under` prefixes that this process has open for writing."""
        if not under:
            return []
        fd_dir = f"{PROC}/{self.pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except PermissionError:
            raise psutil.AccessDenied(self.pid) from None
        except OSError:
            raise psutil.NoSuchProcess(self.pid) from None
        found = []
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue  # closed meanwhile
            if target.startswith(under) and _opened_for_writing(str(self.pid), fd):
                found.append(target)
        return found


@dataclass(slots=True)
class KnownRun:
    id: str
    name: str
    path: str
    real: str  # resolved once: /proc shows resolved paths, and a root may be a symlink
    root: str
    running: bool
    updated: float
    writer_pids: tuple[int, ...]


def norm(path: str) -> str:
    return os.path.normpath(path)


class RunIndex:
    """The runs of the registry by directory, refreshed from its change cursor (no full copy per tick)."""

    def __init__(self, registry: Any, roots: Iterable[str] = ()) -> None:
        self.registry = registry
        self.configured_roots = [norm(os.path.abspath(r)) for r in roots]
        self.prefixes: tuple[str, ...] = ()  # run roots, as prefixes of the files a run writes
        self._real_roots: dict[str, str] = {}
        self.cursor = 0
        self.runs: dict[str, KnownRun] = {}
        self.by_path: dict[str, str] = {}
        self.writers: dict[int, str] = {}
        self.version = 0  # bumped when a run's directory, name or writers change
        self._below: dict[str, str | None] = {}

    def refresh(self) -> None:
        changes = self.registry.changed_after(self.cursor)
        self.cursor = changes.cursor
        touched = False
        for run_id in [*changes.runs, *changes.removed]:
            record = self.registry.get(run_id)
            old = self.runs.get(run_id)
            if record is None or record.status == "deleted":
                touched |= self.runs.pop(run_id, None) is not None
                continue
            path = norm(record.path)
            real = old.real if old is not None and old.path == path else os.path.realpath(path)
            run = KnownRun(record.id, record.name, path, real, norm(record.root), record.status == "running",
                           record.updated or record.started, tuple(record.writer_pids))
            self.runs[run_id] = run
            touched |= old is None or (old.path, old.writer_pids, old.name) != (run.path, run.writer_pids, run.name)
        if touched or not self.version:
            self._rebuild()

    def _rebuild(self) -> None:
        by_path: dict[str, str] = {}
        roots = set(self.configured_roots)
        for run in self.runs.values():
            by_path[run.path] = run.id
            by_path.setdefault(run.real, run.id)
            roots.add(run.root)
        self.by_path = by_path
        for root in roots - self._real_roots.keys():
            self._real_roots[root] = os.path.realpath(root)
        self.prefixes = tuple(sorted({p.rstrip(os.sep) + os.sep for r in roots for p in (r, self._real_roots[r])}))
        self.writers = {pid: run.id for run in self.runs.values() for pid in run.writer_pids}
        self.version += 1
        self._below = {}

    def owner(self, path: str) -> str | None:
        """The run whose directory is `path` or holds it."""
        return owning_run(path, self.by_path)

    def below(self, directory: str) -> str | None:
        """The run a launcher's output directory most likely means: running first, then newest."""
        if directory in self._below:
            return self._below[directory]
        prefix = directory.rstrip(os.sep) + os.sep
        found = [r for p, i in self.by_path.items() if p.startswith(prefix) and (r := self.runs.get(i))]
        best = max(found, key=lambda r: (r.running, r.updated)).id if found else None
        if len(self._below) < 1024:
            self._below[directory] = best
        return best


def argument_paths(argv: Iterable[str], cwd: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(output-flag values, other path arguments) of a command line, as absolute normalised paths."""
    flagged: list[str] = []
    other: list[str] = []
    wants_value = False
    for arg in list(argv)[1:]:  # argv[0] is the interpreter or the launcher itself
        if wants_value:
            wants_value = False
            if not arg.startswith("-"):
                flagged.append(arg)
                continue
        name, eq, value = arg.partition("=")
        key = name.lstrip("-").replace("-", "_").lower().rsplit(".", 1)[-1]
        if arg.startswith("-"):
            if key in OUTPUT_KEYS:
                if eq:
                    flagged.append(value)
                else:
                    wants_value = True
            elif eq and os.sep in value:
                other.append(value)
        elif eq and key in OUTPUT_KEYS:
            flagged.append(value)
        elif os.sep in arg:
            other.append(value if eq else arg)
    return _absolute(flagged, cwd), _absolute(other, cwd)


def _absolute(values: list[str], cwd: str | None) -> tuple[str, ...]:
    result = []
    for value in values:
        value = os.path.expanduser(value.strip())
        if not value or "\0" in value:
            continue
        if not os.path.isabs(value):
            if cwd is None:
                continue
            value = os.path.join(cwd, value)
        result.append(norm(value))
    return tuple(result)
