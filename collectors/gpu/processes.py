"""pid → (user, redacted command), for the processes NVML reports on a GPU.

Only the pids asked for are looked at (never a scan of all processes: psutil.process_iter costs
~32 µs per process on a busy host). A result is cached per (pid, create_time), so a reused pid
is never shown with the previous owner's command, and a steady job costs one stat read per tick.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from collectors.gpu.redact import Redactor

MAX_COMMAND_CHARS = 2048


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """Who runs a process and what it runs; None when the OS will not say (shown as "unknown")."""

    user: str | None
    command: str | None  # already redacted


UNKNOWN = ProcessInfo(None, None)

# Returns the raw (unredacted) identity of a pid it knows, or None to fall back to psutil.
Resolver = Callable[[int], ProcessInfo | None]

_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied)


class ProcessLookup:
    def __init__(
        self,
        redactor: Redactor | None = None,
        resolver: Resolver | None = None,
        max_entries: int = 4096,
        max_command_chars: int = MAX_COMMAND_CHARS,
    ) -> None:
        self.redactor = redactor if redactor is not None else Redactor()
        self.resolver = resolver
        self.max_entries = max_entries
        self.max_command_chars = max_command_chars
        self._cache: OrderedDict[tuple[int, float], ProcessInfo] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def lookup(self, pid: int) -> ProcessInfo:
        """The user and redacted command of `pid`; never raises for a vanished or hidden process."""
        if self.resolver is not None:
            found = self.resolver(pid)
            if found is not None:
                return self._clean(found.user, found.command)
        try:
            process = psutil.Process(pid)
            key = (pid, process.create_time())
        except (*_GONE, ValueError, OSError):
            return UNKNOWN
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self.hits += 1
                return cached
        info = self._read(process)
        with self._lock:
            self.misses += 1
            self._cache[key] = info
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return info

    def _read(self, process: psutil.Process) -> ProcessInfo:
        user: str | None = None
        argv: list[str] | None = None
        with process.oneshot():
            try:
                user = process.username()
            except (*_GONE, KeyError, OSError):
                user = None
            try:
                argv = process.cmdline() or [f"[{process.name()}]"]  # kernel threads have no argv
            except (*_GONE, OSError):
                argv = None
        command = self.redactor.redact_argv(argv) if argv is not None else None
        return ProcessInfo(user, self._truncate(command))

    def _clean(self, user: str | None, command: str | None) -> ProcessInfo:
        redacted = self.redactor.redact(command) if command is not None else None
        return ProcessInfo(user, self._truncate(redacted))

    def _truncate(self, command: str | None) -> str | None:
        # Truncate only after redaction: cutting first could leave half a secret unrecognised.
        if command is None or len(command) <= self.max_command_chars:
            return command
        return command[: self.max_command_chars - 1] + "…"

    def cache_size(self) -> int:
        with self._lock:
            return len(self._cache)
