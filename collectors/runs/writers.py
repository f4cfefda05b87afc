"""Which process is writing a run: open file descriptors in /proc, joined to run directories.

A process that has a file of a run open for writing (e.g. `python train.py > run/train.log`, a
logger keeping metrics.jsonl open) becomes the run's writer. When every writer of a run has
exited and the run had not finished, the run is marked crashed. Only processes whose /proc/PID/fd
labwall may read are seen (the same user, or root); writers that open and close the file for
each write (Lightning's CSVLogger) are never seen, so this rule never applies to them.
"""

from __future__ import annotations

import os

import psutil

from collectors.runs.status import RunProgress

PROC = "/proc"
WRITE_MODES = (os.O_WRONLY, os.O_RDWR)


def _opened_for_writing(pid: str, fd: str) -> bool:
    try:
        with open(f"{PROC}/{pid}/fdinfo/{fd}") as f:
            for line in f:
                if line.startswith("flags:"):
                    return (int(line.split()[1], 8) & os.O_ACCMODE) in WRITE_MODES
    except (OSError, ValueError, IndexError):
        return False
    return False


def find_writers(run_dirs: dict[str, str], max_levels: int = 8) -> dict[str, dict[int, tuple[float, str]]]:
    """{run id: {pid: (create time, name)}} for processes with a file under a run dir open for writing.

    `run_dirs` maps real (symlink-resolved) run directories to run ids.
    """
    found: dict[str, dict[int, tuple[float, str]]] = {}
    if not run_dirs or not os.path.isdir(PROC):
        return found
    me = str(os.getpid())
    try:
        pids = [p for p in os.listdir(PROC) if p.isdigit() and p != me]
    except OSError:
        return found
    for pid in pids:
        fd_dir = f"{PROC}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone, or another user's process we may not look into
        info: tuple[float, str] | None = None
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if not target.startswith("/"):
                continue  # pipes, sockets, anonymous inodes
            run_id = owning_run(os.path.dirname(target), run_dirs, max_levels)
            if run_id is None or int(pid) in found.get(run_id, {}) or not _opened_for_writing(pid, fd):
                continue
            if info is None:
                try:
                    proc = psutil.Process(int(pid))
                    info = (proc.create_time(), proc.name())
                except psutil.Error:
                    break
            found.setdefault(run_id, {})[int(pid)] = info
    return found


def owning_run(directory: str, run_dirs: dict[str, str], max_levels: int | None = None) -> str | None:
    """The run whose directory is `directory` or one of its parents (at most `max_levels` of them)."""
    levels = 0
    while max_levels is None or levels < max_levels:
        run_id = run_dirs.get(directory)
        if run_id is not None:
            return run_id
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory, levels = parent, levels + 1
    return None


def alive(pid: int, create_time: float) -> bool:
    try:
        return abs(psutil.Process(pid).create_time() - create_time) < 0.01
    except psutil.Error:
        return False


def check_writers(active: dict[str, tuple[str, RunProgress]]) -> set[str]:
    """Forget writers that exited (a run left without any is crashed unless it finished), then find
    new ones. `active`: run id -> (run dir, progress). Returns the ids of the runs that changed."""
    changed: set[str] = set()
    for run_id, (_, progress) in active.items():
        for pid, (created, name) in list(progress.writers.items()):
            if not alive(pid, created):
                del progress.writers[pid]
                if not progress.writers:
                    progress.writer_exited(pid, name)
                    changed.add(run_id)
    wanted = {os.path.realpath(path): run_id for run_id, (path, progress) in active.items() if progress.marker is None}
    for run_id, procs in find_writers(wanted).items():
        writers = active[run_id][1].writers
        for pid, info in procs.items():
            if pid not in writers:
                writers[pid] = info
                changed.add(run_id)
    return changed
