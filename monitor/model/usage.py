"""GPU usage records: who held which GPU, for how long, how busy, with how much energy.

The accountant (monitor/usage/) closes one record per (minute, host, GPU, user, run) and adds it
here; the durable store persists what is new (`after(cursor)`) and, on start, `load()`s what the
file kept, so the views answer week-scale questions from one place. Thread-safe; bounded by
`max_age_s` (older records are dropped by `trim()`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class UsageRecord:
    start: float  # start of the bucket, Unix seconds (a whole minute, or a whole hour once rolled up)
    span_s: float  # 60 for a minute record, 3600 for an hour rollup
    host: str
    gpu: str  # GPU index as text ("0", "1", ...)
    uuid: str
    user: str  # "" when the process's user is unknown
    run: str  # run id, "" when no run was joined
    held_s: float  # seconds this (user, run) had a process on the GPU at all: the unsplit "allocated" time
    gpu_s: float  # GPU-seconds allocated, split between the holders by their share of GPU memory
    idle_s: float  # the part of gpu_s while utilisation was below thresholds.gpu_idle_util_percent
    busy_s: float  # gpu_s weighted by utilisation (0..1)
    energy_j: float  # power × time, split like gpu_s

    def as_dict(self) -> dict[str, float | str]:
        return asdict(self)


class UsageLedger:
    """Closed usage records in the order they were added, each with a sequence number (the cursor)."""

    def __init__(self, max_age_s: float = 400 * 86400.0) -> None:
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._records: list[tuple[int, UsageRecord]] = []
        self._seq = 0

    @property
    def cursor(self) -> int:
        with self._lock:
            return self._seq

    def add(self, records: Iterable[UsageRecord]) -> None:
        with self._lock:
            for record in records:
                self._seq += 1
                self._records.append((self._seq, record))

    def load(self, records: Iterable[UsageRecord]) -> int:
        """Records read back from durable storage; returns the cursor after them, so a writer that
        starts there never writes them again."""
        self.add(records)
        return self.cursor

    def after(self, cursor: int) -> tuple[int, list[UsageRecord]]:
        """(new cursor, records added after `cursor`)."""
        with self._lock:
            new = [r for seq, r in self._records if seq > cursor] if self._seq > cursor else []
            return self._seq, new

    def records(self, since: float, until: float) -> list[UsageRecord]:
        """Records whose bucket starts in [since, until)."""
        with self._lock:
            return [r for _, r in self._records if since <= r.start < until]

    def trim(self, now: float) -> int:
        """Drop records older than `max_age_s`; returns how many were dropped."""
        cutoff = now - self.max_age_s
        with self._lock:
            keep = [(s, r) for s, r in self._records if r.start >= cutoff]
            dropped = len(self._records) - len(keep)
            self._records = keep
            return dropped
