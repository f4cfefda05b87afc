"""GPU usage records: who held which GPU, for how long, how busy, with how much energy.

The accountant (monitor/usage/) closes one record per (minute, host, GPU, user, run) and adds it
here; the durable store persists what is new (`after(cursor)`) and, on start, `load()`s what the
file kept, so the views answer week-scale questions from one place. Thread-safe; bounded by
`max_age_s` (older records are dropped by `trim()`).

Records are kept in columns (one numpy structured array, ~72 bytes a record; the five text fields
are one index into a table of distinct (host, gpu, uuid, user, run) keys): 14 days of 8 GPUs at one
record a minute is ~161k records, ~12 MB, and a week's query (`columns`) is a slice, not a loop.
Records may repeat a key and minute (a restart closes a partial minute twice): readers add them up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

KEY_FIELDS = ("host", "gpu", "uuid", "user", "run")
VALUE_FIELDS = ("held_s", "gpu_s", "idle_s", "busy_s", "energy_j")
ROW = np.dtype([("seq", "i8"), ("start", "f8"), ("span_s", "f8"), ("key", "i4"),
                *((name, "f8") for name in VALUE_FIELDS)])
UsageKey = tuple[str, str, str, str, str]  # (host, gpu, uuid, user, run)


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

    @property
    def key(self) -> UsageKey:
        return (self.host, self.gpu, self.uuid, self.user, self.run)


@dataclass(frozen=True, slots=True)
class UsageColumns:
    """Records as columns (`rows[name]`: start, span_s, key, held_s, ...); `keys[rows["key"][i]]` is
    record i's (host, gpu, uuid, user, run). The arrays are copies: the caller may keep them."""

    rows: np.ndarray
    keys: tuple[UsageKey, ...]

    def field(self, name: str) -> list[str]:
        """One text field (host, gpu, uuid, user or run) per key of `keys`, in key order."""
        position = KEY_FIELDS.index(name)
        return [key[position] for key in self.keys]


@dataclass(frozen=True, slots=True)
class UserTotals:
    gpu_s: float = 0.0
    idle_s: float = 0.0
    energy_j: float = 0.0


class UsageLedger:
    """Closed usage records in the order they were added, each with a sequence number (the cursor)."""

    def __init__(self, max_age_s: float = 400 * 86400.0, minute_age_s: float = 14 * 86400.0) -> None:
        self.max_age_s = max_age_s
        self.minute_age_s = minute_age_s  # older minute records are rolled into hour records (as on disk)
        self._lock = threading.Lock()
        self._rows = np.empty(0, dtype=ROW)
        self._pending: list[tuple[object, ...]] = []  # added since the last read, folded in on demand
        self._key_ids: dict[UsageKey, int] = {}
        self._keys: list[UsageKey] = []
        self._seq = 0
        # Per user, everything added live since start (not what `load` read back): never goes down,
        # whatever `trim` drops, so /metrics can export it as a Prometheus counter.
        self._user_totals: dict[str, UserTotals] = {}

    @property
    def cursor(self) -> int:
        with self._lock:
            return self._seq

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows) + len(self._pending)

    @property
    def nbytes(self) -> int:
        """Bytes of the record columns (the key table and pending rows not counted)."""
        with self._lock:
            return int(self._rows.nbytes)

    def add(self, records: Iterable[UsageRecord]) -> None:
        with self._lock:
            for record in records:
                self._append(record)
                old = self._user_totals.get(record.user, UserTotals())
                self._user_totals[record.user] = UserTotals(
                    old.gpu_s + record.gpu_s, old.idle_s + record.idle_s, old.energy_j + record.energy_j)

    def load(self, records: Iterable[UsageRecord]) -> int:
        """Records read back from durable storage; returns the cursor after them, so a writer that
        starts there never writes them again. They do not count in `user_totals` (a counter that
        jumped by the whole file at each restart would be counted twice by Prometheus)."""
        with self._lock:
            for record in records:
                self._append(record)
            return self._seq

    def _append(self, record: UsageRecord) -> None:
        key = record.key
        key_id = self._key_ids.get(key)
        if key_id is None:
            key_id = self._key_ids[key] = len(self._keys)
            self._keys.append(key)
        self._seq += 1
        self._pending.append((self._seq, record.start, record.span_s, key_id, record.held_s, record.gpu_s,
                              record.idle_s, record.busy_s, record.energy_j))

    def _folded(self) -> np.ndarray:
        """All rows, pending ones included (called with the lock held)."""
        if self._pending:
            self._rows = np.concatenate([self._rows, np.array(self._pending, dtype=ROW)])
            self._pending = []
        return self._rows

    def _records(self, rows: np.ndarray) -> list[UsageRecord]:
        keys = self._keys
        return [UsageRecord(start, span, *keys[key], held, gpu, idle, busy, energy)
                for _, start, span, key, held, gpu, idle, busy, energy in rows.tolist()]

    def after(self, cursor: int) -> tuple[int, list[UsageRecord]]:
        """(new cursor, records added after `cursor`)."""
        with self._lock:
            if self._seq <= cursor:
                return self._seq, []
            rows = self._folded()
            first = int(np.searchsorted(rows["seq"], cursor, side="right"))  # seq only grows
            return self._seq, self._records(rows[first:])

    def records(self, since: float, until: float) -> list[UsageRecord]:
        """Records whose bucket starts in [since, until)."""
        with self._lock:
            rows = self._folded()
            return self._records(rows[(rows["start"] >= since) & (rows["start"] < until)])

    def columns(self, since: float, until: float) -> UsageColumns:
        """Records whose bucket starts in [since, until), as columns (what the views aggregate)."""
        with self._lock:
            rows = self._folded()
            return UsageColumns(rows[(rows["start"] >= since) & (rows["start"] < until)], tuple(self._keys))

    def user_totals(self) -> dict[str, UserTotals]:
        """Per user, the sums of every record added live since this process started (monotonic)."""
        with self._lock:
            return dict(self._user_totals)

    def trim(self, now: float) -> int:
        """Drop records older than `max_age_s` and roll minute records older than `minute_age_s` into
        one record per (hour, key), as the durable store does, so memory stays bounded whatever the
        uptime; returns how many rows went away. A rolled row keeps the newest sequence number of its
        minutes: it is never "new" to a reader of `after()`."""
        cutoff, minute_cutoff = now - self.max_age_s, now - self.minute_age_s
        with self._lock:
            rows = self._folded()
            before = len(rows)
            rows = rows[rows["start"] >= cutoff]
            old = (rows["span_s"] < HOUR_S) & (rows["start"] < minute_cutoff - minute_cutoff % HOUR_S)
            if old.any():
                rows = np.concatenate([rows[~old], _rolled(rows[old])])
                rows = rows[np.argsort(rows["seq"], kind="stable")]
            self._rows = rows
            return before - len(rows)


HOUR_S = 3600.0


def _rolled(rows: np.ndarray) -> np.ndarray:
    """Minute rows summed per (hour, key): start the hour, span 3600 s, seq the newest of the group."""
    hours = rows["start"] - rows["start"] % HOUR_S
    groups, inverse = np.unique(np.stack([hours, rows["key"].astype("f8")], axis=1), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    out = np.zeros(len(groups), dtype=ROW)
    out["start"], out["key"], out["span_s"] = groups[:, 0], groups[:, 1].astype("i4"), HOUR_S
    np.maximum.at(out["seq"], inverse, rows["seq"])
    for name in VALUE_FIELDS:
        out[name] = np.bincount(inverse, weights=rows[name], minlength=len(groups))
    return out
