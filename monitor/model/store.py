"""The store: one ring buffer per series, a 1-minute downsampled tier, latest state documents,
collector health and a bounded event log. Thread-safe; memory bounded whatever the uptime.

Every appended point and every closed minute bucket takes the next value of one store-wide
sequence, so a view keeps a single integer cursor and reads only what is new.
"""

from __future__ import annotations

import math
import threading
import time as _time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from monitor.model.remote_hosts import RemoteHosts
from monitor.model.ringbuffer import Chunk, RingBuffer
from monitor.model.run_registry import RunRegistry
from monitor.model.samples import Event, Level, Sample, SeriesKey
from monitor.model.usage import UsageLedger

MINUTE = 60.0
DAY_BUCKETS = 24 * 60


class HealthSource(Protocol):
    def snapshot(self) -> dict[str, Any]: ...


class Journal(Protocol):
    """Durable storage as the store sees it: every call only queues (never waits on a disk)."""

    def minute(self, key: SeriesKey, start: float, mean: float, peak: float) -> None: ...

    def event(self, event: Event) -> None: ...

    def alert(self, kind: str, alert: dict[str, Any], time: float) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...


# (seq, minute start, mean, max) rows restored for a series that no collector has written yet
RestoredMinutes = list[tuple[int, float, float, float]]


@dataclass(slots=True)
class _MinuteBucket:
    start: float
    total: float = 0.0
    count: int = 0
    peak: float = -math.inf

    def add(self, value: float) -> None:
        self.total += value
        self.count += 1
        self.peak = max(self.peak, value)


class Series:
    """A raw ring for the history window plus, optionally, 24 h of 1-minute (mean, max) buckets."""

    __slots__ = ("_bucket", "day", "key", "raw", "updated")

    def __init__(self, key: SeriesKey, capacity: int, day_tier: bool) -> None:
        self.key = key
        self.raw = RingBuffer(capacity)
        self.day = RingBuffer(DAY_BUCKETS, columns=2) if day_tier else None
        self._bucket: _MinuteBucket | None = None
        self.updated = 0.0

    def append(self, next_seq: Callable[[], int], time: float, value: float) -> tuple[float, float, float] | None:
        """Add a raw point; returns the minute bucket it closed, (start, mean, max), if any."""
        self.raw.append(next_seq(), time, value)
        self.updated = time
        if self.day is None:
            return None
        start = math.floor(time / MINUTE) * MINUTE
        bucket = self._bucket
        closed = None
        if bucket is not None and start != bucket.start:
            if start > bucket.start:
                closed = (bucket.start, bucket.total / bucket.count, bucket.peak)
                self.day.append(next_seq(), *closed)
            bucket = None  # a clock stepping backwards starts a fresh bucket rather than mixing minutes
        if bucket is None:
            bucket = self._bucket = _MinuteBucket(start)
        bucket.add(value)
        return closed

    def prefill(self, minutes: RestoredMinutes) -> None:
        """Minute buckets read back from durable storage, older than anything appended after."""
        if self.day is not None:
            for seq, t, mean, peak in minutes:
                self.day.append(seq, t, mean, peak)

    def open_bucket(self) -> tuple[float, float, float] | None:
        b = self._bucket
        return (b.start, b.total / b.count, b.peak) if b and b.count else None

    @property
    def nbytes(self) -> int:
        return self.raw.nbytes + (self.day.nbytes if self.day else 0)


class EventLog:
    """Bounded log of notable events (time, level, source, text), read by sequence cursor."""

    def __init__(self, capacity: int) -> None:
        self._events: deque[Event] = deque(maxlen=capacity)
        self._seq = 0
        self._lock = threading.Lock()
        self.listener: Callable[[Event], None] | None = None  # durable storage's queue

    def add(self, level: Level, source: str, text: str, time: float | None = None) -> Event:
        with self._lock:
            self._seq += 1
            event = Event(self._seq, _time.time() if time is None else time, level, source, text)
            self._events.append(event)
        if self.listener is not None:
            self.listener(event)
        return event

    def restore(self, events: Iterable[tuple[float, Level, str, str]]) -> int:
        """Events read back from durable storage, (time, level, source, text) oldest first, taking
        the first sequence numbers; call before anything else adds one. Returns how many."""
        with self._lock:
            for time, level, source, text in events:
                self._seq += 1
                self._events.append(Event(self._seq, time, level, source, text))
            return len(self._events)

    def read_after(self, cursor: int, limit: int | None = None) -> list[Event]:
        with self._lock:
            new = [e for e in self._events if e.seq > cursor] if cursor < self._seq else []
        return new[-limit:] if limit else new

    @property
    def cursor(self) -> int:
        return self._seq

    @property
    def capacity(self) -> int:
        return self._events.maxlen or 0


class Store:
    def __init__(
        self,
        host: str,
        window_s: float = 600.0,
        day_tier: bool = True,
        event_capacity: int = 1000,
        max_series: int = 20_000,
    ) -> None:
        self.host = host
        self.window_s = window_s
        self.day_tier = day_tier
        self.max_series = max_series
        self.events = EventLog(event_capacity)
        self.runs = RunRegistry(self.events)
        self.remote = RemoteHosts()  # other hosts, as a Prometheus server sees them (prometheus collector)
        self.usage = UsageLedger()  # closed GPU usage records (monitor/usage), persisted by the durable store
        self._series: dict[SeriesKey, Series] = {}
        self._states: dict[str, tuple[float, Any]] = {}
        self._health: dict[str, HealthSource] = {}
        self._seq = 0
        self._lock = threading.Lock()
        self.journal: Journal | None = None  # durable storage (monitor/model/storage), when enabled
        self._restored: dict[SeriesKey, RestoredMinutes] = {}
        self.restored_until: float | None = None  # the newest restored minute: a restart lies after it
        self.restored_alerts: list[dict[str, Any]] = []  # cleared alerts read back, oldest first

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    @property
    def cursor(self) -> int:
        """The newest sequence number handed out; pass it to read_after to get only later points."""
        with self._lock:
            return self._seq

    def capacity_for(self, interval_s: float) -> int:
        return max(2, math.ceil(self.window_s / interval_s) + 1)

    # -- writing (collector threads) --------------------------------------------------------------
    def append(self, samples: Iterable[Sample], interval_s: float) -> None:
        """Append samples; a new series gets a ring sized for the window at `interval_s`."""
        capacity = self.capacity_for(interval_s)
        with self._lock:
            for s in samples:
                if not math.isfinite(s.value):
                    continue  # NaN/inf never reach a chart; the state document keeps the raw reading
                series = self._series.get(s.key)
                if series is None:
                    if len(self._series) >= self.max_series:
                        self._evict_stalest()
                    series = self._series[s.key] = Series(s.key, capacity, self.day_tier)
                    if s.key in self._restored:
                        series.prefill(self._restored.pop(s.key))
                closed = series.append(self._next_seq, s.time, s.value)
                if closed is not None and self.journal is not None:
                    self.journal.minute(s.key, *closed)

    def restore_minutes(self, key: SeriesKey, rows: Iterable[tuple[float, float, float]]) -> None:
        """Minute buckets (start, mean, max) read back from durable storage, oldest first: they take
        sequence numbers now and fill the series' 1-minute tier when its collector first writes it."""
        if not self.day_tier:
            return
        with self._lock:
            kept = [(self._next_seq(), t, mean, peak) for t, mean, peak in rows][-DAY_BUCKETS:]
            if kept:
                self._restored[key] = kept
                self.restored_until = max(self.restored_until or kept[-1][1], kept[-1][1])

    def record_alert(self, kind: str, alert: dict[str, Any], time: float) -> None:
        """An alert raised or cleared (the alert engine): kept by durable storage, when enabled."""
        if self.journal is not None:
            self.journal.alert(kind, alert, time)

    def _evict_stalest(self) -> None:
        stalest = min(self._series.values(), key=lambda s: s.updated)
        del self._series[stalest.key]

    def set_state(self, source: str, document: Any, time: float | None = None) -> None:
        """Replace the latest structured reading of a source (the GPU list, the system summary)."""
        with self._lock:
            self._states[source] = (_time.time() if time is None else time, document)

    def register_health(self, name: str, health: HealthSource) -> None:
        with self._lock:
            self._health[name] = health

    # -- reading (views) -------------------------------------------------------------------------
    def state(self, source: str) -> tuple[float, Any] | None:
        with self._lock:
            return self._states.get(source)

    def health(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            sources = dict(self._health)
        return {name: h.snapshot() for name, h in sources.items()}

    def keys(self, name_prefix: str = "") -> list[SeriesKey]:
        with self._lock:
            return [k for k in self._series if k[0].startswith(name_prefix)]

    def latest(self, key: SeriesKey) -> tuple[float, float] | None:
        with self._lock:
            series = self._series.get(key)
            found = series.raw.latest() if series else None
        return (found[0], found[1][0]) if found else None

    def read_after(self, key: SeriesKey, cursor: int, limit: int | None = None) -> Chunk | None:
        """Raw points of one series after `cursor` (None when the series does not exist)."""
        with self._lock:
            series = self._series.get(key)
            return series.raw.read_after(cursor, limit) if series else None

    def read_day_after(self, key: SeriesKey, cursor: int) -> Chunk | None:
        """Closed 1-minute buckets after `cursor`: values[:, 0] is the mean, values[:, 1] the max."""
        with self._lock:
            series = self._series.get(key)
            return series.day.read_after(cursor) if series and series.day else None

    def open_bucket(self, key: SeriesKey) -> tuple[float, float, float] | None:
        """The minute still being filled: (start, mean so far, max so far)."""
        with self._lock:
            series = self._series.get(key)
            return series.open_bucket() if series else None

    def changed_after(self, cursor: int, name_prefix: str = "") -> dict[SeriesKey, Chunk]:
        """Every series with raw points after `cursor`, with those points: what a view flushes."""
        with self._lock:
            return {
                key: series.raw.read_after(cursor)
                for key, series in self._series.items()
                if series.raw.last_seq > cursor and key[0].startswith(name_prefix)
            }

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "series": len(self._series),
                "points": sum(len(s.raw) for s in self._series.values()),
                "bytes": sum(s.nbytes for s in self._series.values()),
                "cursor": self._seq,
            }
