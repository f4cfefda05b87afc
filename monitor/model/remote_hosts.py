"""The hosts a Prometheus server knows about, as the prometheus collector last read them.

Written only by the prometheus collector thread, read by the views. Every change bumps `seq`, so a
view recomputes what it shows only when something changed. A host that stops answering keeps its
last values, marked down with the time it was last seen; when Prometheus itself stops answering
every host keeps its last good data and the source is marked stale since that moment.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

DOWN_TARGET = "its scrape target is down (up == 0)"
DOWN_ABSENT = "its series are gone from Prometheus"


@dataclass(frozen=True, slots=True)
class RemoteHost:
    host: str
    gpus: tuple[dict[str, Any], ...]  # snapshot field names: index, uuid, name, status, utilization_gpu_percent, …
    system: dict[str, Any]  # cpu_percent, memory_used_bytes, memory_total_bytes, load1 (any may be absent)
    up: bool
    last_seen: float  # when Prometheus last had its data (Unix seconds)
    down_reason: str | None = None
    spark: tuple[float, ...] = ()  # mean GPU utilisation (%) over the lookback, oldest first

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "up": self.up, "last_seen": self.last_seen, "down_reason": self.down_reason,
                "gpus": [dict(g) for g in self.gpus], "system": dict(self.system)}


@dataclass(frozen=True, slots=True)
class SourceState:
    url: str | None = None
    ok_time: float | None = None  # the last answer
    failing_since: float | None = None  # None while it answers
    reason: str | None = None  # why the last query failed
    queries: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "state": "ok" if self.failing_since is None and self.ok_time else
                "stale" if self.failing_since is not None else "waiting",
                "last_answer": self.ok_time, "failing_since": self.failing_since, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class RemoteView:
    """What a view reads: immutable, so it can be used outside the lock."""

    seq: int
    hosts: tuple[RemoteHost, ...]  # sorted by host name
    runs: tuple[dict[str, Any], ...]  # run summaries with `host`, most recently updated first
    source: SourceState = field(default_factory=SourceState)


class RemoteHosts:
    """The registry of remote hosts; `seq` grows with every change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hosts: dict[str, RemoteHost] = {}
        self._runs: tuple[dict[str, Any], ...] = ()
        self._source = SourceState()
        self._seq = 0
        self._view = RemoteView(0, (), ())

    def configure(self, url: str) -> None:
        with self._lock:
            self._source = replace(self._source, url=url)
            self._publish()

    # -- writing (the prometheus collector thread) -------------------------------------------------
    def update(self, readings: dict[str, Any], runs: list[dict[str, Any]], down_targets: set[str],
               now: float, forget_after_s: float = 86400.0, queries: int = 0) -> None:
        """One good reading of every host. `readings`: host → RemoteReading (collectors/prometheus/mapping.py:
        gpus, system, instances); a known host missing from them, or whose targets are all down, is marked down."""
        with self._lock:
            hosts: dict[str, RemoteHost] = {}
            for name, reading in readings.items():
                old = self._hosts.get(name)
                targets = reading.instances
                down = bool(targets) and targets <= down_targets
                if down and old is not None:
                    hosts[name] = _down(old, DOWN_TARGET)
                    continue
                hosts[name] = RemoteHost(name, tuple(reading.gpus.values()), dict(reading.system), not down,
                                         now if not down else (old.last_seen if old else now),
                                         DOWN_TARGET if down else None, old.spark if old else ())
            for name, old in self._hosts.items():
                if name not in hosts and now - old.last_seen <= forget_after_s:
                    hosts[name] = _down(old, DOWN_ABSENT)
            self._hosts = hosts
            self._runs = tuple(r for r in runs if hosts.get(r.get("host")) is not None)
            self._source = SourceState(self._source.url, now, None, None, queries)
            self._publish()

    def set_sparklines(self, sparks: dict[str, list[float]]) -> None:
        with self._lock:
            self._hosts = {name: replace(h, spark=tuple(sparks.get(name, ()))) for name, h in self._hosts.items()}
            self._publish()

    def failed(self, reason: str, now: float) -> float:
        """Prometheus gave no usable answer: keep the last data, remember since when. Returns that time."""
        with self._lock:
            since = self._source.failing_since if self._source.failing_since is not None else now
            if (since, reason) != (self._source.failing_since, self._source.reason):
                self._source = replace(self._source, failing_since=since, reason=reason)
                self._publish()
            return since

    def _publish(self) -> None:
        self._seq += 1
        self._view = RemoteView(self._seq, tuple(sorted(self._hosts.values(), key=lambda h: h.host)),
                                self._runs, self._source)

    # -- reading (views) ---------------------------------------------------------------------------
    def view(self) -> RemoteView:
        with self._lock:
            return self._view

    @property
    def seq(self) -> int:
        with self._lock:
            return self._seq


def _down(old: RemoteHost, reason: str) -> RemoteHost:
    return old if not old.up and old.down_reason == reason else replace(old, up=False, down_reason=reason)
