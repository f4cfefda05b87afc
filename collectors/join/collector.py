"""The run join: for each process on a GPU (pid from the latest "gpu" document), the run it writes.

A process is joined to a known run (the run registry's paths) by, in this order, first match wins:
  open_files  a file it has open for writing lies inside the run's directory
  cmdline     an output flag (--output_dir, --logdir, --default_root_dir, hydra's `…dir=`) names the
              run's directory, a path inside it, or a directory holding runs (the running, newest one)
  cwd         its working directory lies inside the run's directory
  cmdline     any other path argument lies inside the run's directory
  parent      the same tests on its parents, nearest first (torchrun, accelerate, deepspeed, python -m
              wrappers, bash), up to `parent_levels`; the walk stops at another user's process, at
              sshd/tmux/screen/init, and at labwall itself
  writer      the runs watcher found it writing the run (the run's writer_pids), or its parent (it is
              a worker the writer started), or a process it started (it is the launcher on the GPU)

What /proc says is cached per (pid, create time): a reused pid is a new process. A joined process is
read again every `recheck_s`, one not joined after `retry_s`, backing off to `recheck_s`; matching
the cached facts against the runs known now costs no /proc read, so a run discovered later joins at
the next tick. Reads are bounded per tick (`budget_s`): the rest wait for the next ticks. Open files
are seen through /proc/PID/fd links, never by touching the files (a hung network mount cannot hang
the join). A process whose /proc cannot be read (another user's, with labwall not root; vanished)
is "unknown run", never an error.
"""

from __future__ import annotations

import os
import pwd
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psutil

from collectors.base import Collector
from collectors.join.config import JoinConfig
from collectors.join.run_index import JoinProcess, RunIndex, argument_paths, norm
from collectors.runs.writers import PROC
from monitor.model.documents import GpuField, JoinField, ProcessField, Source, gpu_readings
from monitor.model.store import Store

UNKNOWN_RUN = "unknown run"  # its /proc could not be read (another user's process, or it vanished)
NO_RUN = "no run found"  # read, and it writes none of the known runs
PENDING = "not read yet"  # the per-tick budget ran out before its turn
MAX_CACHE = 4096

# Parents above these are sessions, not launchers: the walk stops there.
STOP_NAMES = frozenset({
    "systemd", "init", "sshd", "sshd-session", "tmux: server", "tmux", "screen", "SCREEN", "login", "su",
    "sudo", "cron", "containerd-shim", "containerd-shim-runc-v2", "conmon", "slurmstepd", "dockerd",
})
_READ_ERRORS = (psutil.Error, OSError)

Key = tuple[int, float]  # (pid, create time)


@dataclass(slots=True)
class ProcessFacts:
    """What /proc said about one process. `read_at` None: only its identity is known so far."""

    pid: int
    create_time: float
    ppid: int | None
    name: str | None
    uid: int | None
    user: str | None
    seen: float
    read_at: float | None = None
    written: tuple[str, ...] = ()  # files open for writing
    cwd: str | None = None
    flagged: tuple[str, ...] = ()  # output-flag arguments, as absolute paths
    paths: tuple[str, ...] = ()  # other path arguments, as absolute paths
    unreadable: bool = False  # some of it could not be read (another user's process, or gone)
    parents: tuple[Key, ...] = ()  # nearest first, found when read
    joined: bool = False
    misses: int = 0  # reads in a row that found no run: its retries back off up to recheck_s
    memo: tuple[int, float, str | None, str | None] | None = None  # (index version, read_at, run id, via)


class RunJoinCollector(Collector):
    name = "join"

    def __init__(
        self,
        store: Store,
        config: JoinConfig | None = None,
        *,
        roots: Iterable[str | os.PathLike[str]] = (),
        process_factory: Callable[[int], JoinProcess] = JoinProcess,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`roots`: the run roots (runs.roots); files outside them are never looked at."""
        self.config = config if config is not None else JoinConfig()
        super().__init__(store, self.config.interval_s)
        self.process_factory = process_factory
        self.clock = clock  # for the per-tick budget only
        self.index = RunIndex(store.runs, [os.fspath(r) for r in roots])
        self.cache: dict[Key, ProcessFacts] = {}
        self.published: dict[str, list[dict[str, Any]]] = {}  # run id -> gpus written to the registry
        self.own_pid = os.getpid()
        self.reads = 0  # full /proc readings, all ticks (bench, tests)
        self._launchers: tuple[int, float, dict[int, str]] | None = None
        self._users: dict[int, str] = {}
        self._boot = psutil.boot_time()
        self._hz = os.sysconf("SC_CLK_TCK")
        self.last_tick_s = 0.0

    # -- one tick --------------------------------------------------------------------------------
    def collect(self, now: float) -> None:
        started = self.clock()
        deadline = started + self.config.budget_s
        placements, doc_users = self._placements()
        self.index.refresh()
        facts: dict[int, ProcessFacts | None] = {pid: self._identity(pid, now) for pid in placements}
        due = [f for f in facts.values() if f is not None and self._due(f, now)]
        due.sort(key=lambda f: (f.read_at is not None, f.read_at or 0.0))  # never read first
        for i, f in enumerate(due):
            if i and self.clock() > deadline:
                break  # the rest next tick; the first always goes, so every tick makes progress
            self._read_with_parents(f, now)
        by_pid: dict[int, dict[str, Any]] = {}
        by_run: dict[str, list[dict[str, Any]]] = {}
        for pid, places in placements.items():
            f = facts[pid]
            run_id, via, reason = self._match(f, now)
            run = self.index.runs.get(run_id) if run_id else None
            # The GPU collector's user for the pid (the same /proc owner on a real GPU; the scenario's on
            # simulated ones): the usage accountant compares it to tell a reused pid from the same process.
            user = doc_users.get(pid) or (f.user if f else None)
            by_pid[pid] = {JoinField.RUN_ID: run_id, JoinField.RUN_NAME: run.name if run else None, JoinField.VIA: via,
                           JoinField.USER: user, JoinField.REASON: reason}
            if run_id is not None:
                by_run.setdefault(run_id, []).extend(places)
        self._publish(by_run)
        self._forget(now)
        self.last_tick_s = self.clock() - started
        self.store.set_state(Source.GPU_RUNS, {JoinField.BY_PID: by_pid, JoinField.BY_RUN: by_run, JoinField.TIME: now,
                                               JoinField.TICK_S: self.last_tick_s}, now)
        joined = sum(1 for e in by_pid.values() if e[JoinField.RUN_ID])
        self.health.detail = {
            "processes": len(by_pid), "joined": joined,
            "unknown": sum(1 for e in by_pid.values() if e[JoinField.REASON] == UNKNOWN_RUN),
            "pending": sum(1 for e in by_pid.values() if e[JoinField.REASON] == PENDING),
            "cached_processes": len(self.cache), "tick_ms": round(self.last_tick_s * 1000, 2),
        }

    def _placements(self) -> tuple[dict[int, list[dict[str, Any]]], dict[int, str | None]]:
        placements: dict[int, list[dict[str, Any]]] = {}
        users: dict[int, str | None] = {}
        for gpu in gpu_readings(self.store):
            for p in gpu.get(GpuField.PROCESSES) or []:
                pid = p.get(ProcessField.PID)
                if isinstance(pid, int) and pid > 0:
                    placements.setdefault(pid, []).append({
                        JoinField.GPU: gpu.get(GpuField.INDEX), JoinField.UUID: gpu.get(GpuField.UUID),
                        JoinField.PID: pid, JoinField.GPU_MEMORY_BYTES: p.get(ProcessField.GPU_MEMORY_BYTES)})
                    users.setdefault(pid, p.get(ProcessField.USER))
        return placements, users

    def _due(self, f: ProcessFacts, now: float) -> bool:
        if f.read_at is None:
            return True
        every = self.config.recheck_s
        if not (f.joined or f.unreadable):
            every = min(every, self.config.retry_s * 2 ** min(f.misses - 1, 16))
        every *= 1.0 + 0.5 * ((f.pid * 2654435761) % 1024) / 1024  # spread: 32 jobs started together
        return now - f.read_at >= every or now < f.read_at  # a clock stepped back re-reads

    # -- /proc -----------------------------------------------------------------------------------
    def _stat(self, pid: int) -> tuple[float, int, str] | None:
        """(create time, ppid, name) from /proc/PID/stat, one small read; None when it is gone.
        (psutil's create_time() also re-reads the boot time on every call, 3x the cost.)"""
        try:
            with open(f"{PROC}/{pid}/stat", "rb") as f:
                head, _, tail = f.read().rpartition(b")")
            fields = tail.split()
            return round(self._boot + int(fields[19]) / self._hz, 2), int(fields[1]), head.partition(b"(")[2].decode()
        except (OSError, ValueError, IndexError, UnicodeDecodeError):
            return None

    def _identity(self, pid: int, now: float) -> ProcessFacts | None:
        """The cached facts of the process now holding `pid`, or None when it is gone."""
        stat = self._stat(pid)
        if stat is None:
            return None
        key = (pid, stat[0])
        f = self.cache.get(key)
        if f is None:
            try:
                uid: int | None = os.stat(f"{PROC}/{pid}").st_uid
            except OSError:
                return None
            user = self._users.get(uid)
            if user is None:
                try:
                    user = pwd.getpwuid(uid).pw_name
                except KeyError:
                    user = str(uid)  # a uid without a passwd entry (containers)
                self._users[uid] = user
            f = self.cache[key] = ProcessFacts(pid, stat[0], stat[1], stat[2], uid, user, now)
        f.seen = now
        return f

    def _read_with_parents(self, f: ProcessFacts, now: float) -> None:
        self._read(f, now)
        parents: list[Key] = []
        current = f
        for _ in range(self.config.parent_levels):
            ppid = current.ppid
            if not ppid or ppid <= 1 or ppid == self.own_pid:
                break
            parent = self._identity(ppid, now)
            if parent is None or parent.name in STOP_NAMES or (current.uid is not None and parent.uid != current.uid):
                break
            if self._due(parent, now):  # a launcher of 8 workers is read once, not 8 times
                self._read(parent, now)
            parents.append((parent.pid, parent.create_time))
            current = parent
        f.parents = tuple(parents)

    def _read(self, f: ProcessFacts, now: float) -> None:
        self.reads += 1
        f.read_at, f.unreadable = now, False
        f.misses = 0 if f.joined else f.misses + 1
        try:
            proc = self.process_factory(f.pid)
            stat = self._stat(f.pid)
            if stat is None or stat[0] != f.create_time:
                raise psutil.NoSuchProcess(f.pid)
        except (*_READ_ERRORS, ValueError):
            f.unreadable = True
            return
        cwd: str | None = None
        argv: list[str] = []
        with proc.oneshot():
            try:
                cwd = proc.cwd() or None
            except _READ_ERRORS:
                f.unreadable = True
            try:
                argv = proc.cmdline()
            except _READ_ERRORS:
                f.unreadable = True
            try:
                f.written = tuple(norm(p) for p in proc.written_files(self.index.prefixes))
            except _READ_ERRORS:
                f.unreadable, f.written = True, ()
        f.cwd = norm(cwd) if cwd else None
        f.flagged, f.paths = argument_paths(argv, f.cwd)

    def _writer_launchers(self, now: float) -> dict[int, str]:
        """pid -> run id for the parents of every writer of a run (a launcher on a GPU whose child
        writes the run). Worked out only while some GPU process is not joined otherwise, and kept
        for `retry_s` (or until the writers change)."""
        if self._launchers is not None and self._launchers[0] == self.index.version and \
                0 <= now - self._launchers[1] < self.config.retry_s:
            return self._launchers[2]
        found: dict[int, str] = {}
        for pid, run_id in self.index.writers.items():
            f = self._identity(pid, now)
            for _ in range(self.config.parent_levels):
                if f is None or not f.ppid or f.ppid <= 1 or f.ppid == self.own_pid:
                    break
                parent = self._identity(f.ppid, now)
                if parent is None or parent.uid != f.uid or parent.name in STOP_NAMES:
                    break
                found.setdefault(parent.pid, run_id)
                f = parent
        self._launchers = (self.index.version, now, found)
        return found

    # -- matching ----------------------------------------------------------------------------------
    def _match(self, f: ProcessFacts | None, now: float) -> tuple[str | None, str | None, str | None]:
        """(run id, via, reason when not joined)."""
        if f is None:
            return None, None, UNKNOWN_RUN
        if f.read_at is None:
            return None, None, PENDING
        chain = [f]
        for key in f.parents:
            parent = self.cache.get(key)
            if parent is None:
                break
            parent.seen = now  # kept while a process on a GPU descends from it
            chain.append(parent)
        for i, g in enumerate(chain):
            run_id, via = self._match_own(g)
            if run_id is not None:
                f.joined = True
                return run_id, (via if i == 0 else "parent"), None
        writers = self.index.writers
        # The runs watcher saw it (or a parent of it: a worker the trainer spawned) writing a run...
        run_id = next((writers[g.pid] for g in chain if g.pid in writers), None)
        if run_id is None and writers:  # ...or it launched a process that writes one
            run_id = self._writer_launchers(now).get(f.pid)
        f.joined = run_id is not None
        if run_id is not None:
            return run_id, "writer", None
        return None, None, UNKNOWN_RUN if f.unreadable else NO_RUN

    def _match_own(self, f: ProcessFacts) -> tuple[str | None, str | None]:
        """Its own files, flags, working directory and paths against the runs known now (memoised)."""
        memo = f.memo
        if memo is not None and memo[0] == self.index.version and memo[1] == f.read_at:
            return memo[2], memo[3]
        run_id, via = self._match_paths(f)
        f.memo = (self.index.version, f.read_at or 0.0, run_id, via)
        return run_id, via

    def _match_paths(self, f: ProcessFacts) -> tuple[str | None, str | None]:
        owner = self.index.owner
        for path in f.written:
            if (run_id := owner(os.path.dirname(path))) is not None:
                return run_id, "open_files"
        for path in f.flagged:
            if (run_id := owner(path) or self.index.below(path)) is not None:
                return run_id, "cmdline"
        if f.cwd is not None and (run_id := owner(f.cwd)) is not None:
            return run_id, "cwd"
        for path in f.paths:
            if (run_id := owner(path)) is not None:
                return run_id, "cmdline"
        return None, None

    # -- output ----------------------------------------------------------------------------------
    def _publish(self, by_run: dict[str, list[dict[str, Any]]]) -> None:
        """Write each run's GPU set to the registry when it changed (not its memory, which moves every tick)."""
        now_sets = {
            run_id: sorted(({k: p[k] for k in (JoinField.GPU, JoinField.UUID, JoinField.PID)} for p in places),
                           key=lambda e: (e[JoinField.GPU] if e[JoinField.GPU] is not None else -1, e[JoinField.PID]))
            for run_id, places in by_run.items()
        }
        for run_id in set(self.published) | set(now_sets):
            gpus = now_sets.get(run_id, [])
            if self.published.get(run_id, []) != gpus:
                self.store.runs.update(run_id, gpus=gpus)
            if gpus:
                self.published[run_id] = gpus
            else:
                self.published.pop(run_id, None)

    def _forget(self, now: float) -> None:
        horizon = now - max(self.config.recheck_s, 4 * self.config.interval_s)
        stale = [k for k, f in self.cache.items() if f.seen < horizon or f.seen > now + 60]
        for key in stale:
            del self.cache[key]
        if len(self.cache) > MAX_CACHE:
            for key in sorted(self.cache, key=lambda k: self.cache[k].seen)[: len(self.cache) - MAX_CACHE]:
                del self.cache[key]
