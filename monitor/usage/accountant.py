"""The usage accountant: every GPU reading → seconds per (minute, host, GPU, user, run) → UsageRecords.

A collector named "usage" (supervised like every source) whose only source is the store: each
tick it looks at the "gpu" state document and, when it is a new reading, the run join ("gpu_runs").

Time: a reading holds from its own time until the next reading (sample and hold, so a change —
a new process, a pid now owned by another user — counts from the reading that shows it), but for
at most `max_hold_s` (default max(5 s, 3 GPU intervals)). So a GPU collector that stops, hangs or
loses its driver accrues at most `max_hold_s` after its last reading, and a GPU that is lost
accrues nothing from the reading that says so. Holds are cut at minute boundaries; a minute is
closed (its records added to `store.usage`) once a reading after its end has arrived, or
`max_hold_s` after the last reading when none comes. On shutdown the open minute is closed as it
is (its records may then repeat after a restart; readers add records up).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from collectors.base import Collector
from monitor.config import Config
from monitor.model.run_gpus import join_document
from monitor.model.store import Store
from monitor.model.usage import UsageRecord
from monitor.usage.split import Holding, holdings

MINUTE = 60.0
TRIM_EVERY_S = 3600.0
HOLD_INTERVALS = 3
MIN_HOLD_S = 5.0

# (held_s, gpu_s, idle_s, busy_s, energy_j) of one (host, GPU, user, run) in one minute
Sums = list[float]
HolderKey = tuple[str, str, str, str]  # (gpu, uuid, user, run)


@dataclass(frozen=True, slots=True)
class Reading:
    time: float
    holdings: tuple[Holding, ...]


class UsageAccountant(Collector):
    name = "usage"

    def __init__(self, store: Store, interval_s: float, idle_util_percent: float, max_hold_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(store, interval_s)
        self.idle_util_percent = idle_util_percent
        self.max_hold_s = max_hold_s
        self.clock = clock
        self.last: Reading | None = None  # the reading whose hold is still open
        self.seen_time: float | None = None  # time of the newest "gpu" document looked at
        self.minutes: dict[float, dict[HolderKey, Sums]] = {}  # open minutes
        self.records_closed = 0
        self.tick_s = 0.0
        self._trimmed_at = -math.inf

    # -- Collector hooks ----------------------------------------------------------------------------
    def collect(self, now: float) -> None:
        started = time.perf_counter()
        state = self.store.state("gpu")
        if state is not None and state[0] != self.seen_time:
            self.observe(state[0], state[1] if isinstance(state[1], dict) else None)
        elif self.last is not None and now - self.last.time > self.max_hold_s:
            self._hold(self.last, self.last.time + self.max_hold_s)  # no reading since: the source stopped
            self.last = None
        self._close(self.last.time if self.last is not None else now)
        if now - self._trimmed_at >= TRIM_EVERY_S:
            self._trimmed_at = now
            self.store.usage.trim(now)
        self.tick_s = time.perf_counter() - started
        self.health.detail = {"open_minutes": len(self.minutes), "records_closed": self.records_closed}

    def close(self) -> None:
        """Shutdown: count the last reading's hold up to now (at most max_hold_s), close every minute."""
        if self.last is not None:
            self._hold(self.last, min(self.clock(), self.last.time + self.max_hold_s))
            self.last = None
        self._close(math.inf)

    # -- integrating --------------------------------------------------------------------------------
    def observe(self, at: float, gpu_doc: dict[str, Any] | None) -> None:
        """A new "gpu" reading taken at `at`: close the previous reading's hold, open this one's."""
        self.seen_time = at
        last = self.last
        if last is not None and at > last.time:
            self._hold(last, min(at, last.time + self.max_hold_s))
        # (a clock stepped backwards: the previous hold is dropped rather than counted negative)
        found = holdings(gpu_doc, join_document(self.store), self.idle_util_percent)
        self.last = Reading(at, tuple(found))

    def _hold(self, reading: Reading, end: float) -> None:
        """Add `reading`'s holdings over [reading.time, end), minute by minute."""
        t = reading.time
        while t < end:
            minute = math.floor(t / MINUTE) * MINUTE
            stop = min(end, minute + MINUTE)
            seconds = stop - t
            sums = self.minutes.setdefault(minute, {})
            for h in reading.holdings:
                acc = sums.get((h.gpu, h.uuid, h.user, h.run))
                if acc is None:
                    acc = sums[(h.gpu, h.uuid, h.user, h.run)] = [0.0] * 5
                split = h.share * seconds
                acc[0] += seconds
                acc[1] += split
                if h.idle:
                    acc[2] += split
                acc[3] += split * h.util
                acc[4] += split * h.power_w
            t = stop

    def _close(self, horizon: float) -> None:
        """Add the records of every open minute that ends at or before `horizon`."""
        done = sorted(m for m in self.minutes if m + MINUTE <= horizon)
        if not done:
            return
        host = self.store.host
        records = []
        for minute in done:
            for (gpu, uuid, user, run), acc in self.minutes.pop(minute).items():
                records.append(UsageRecord(minute, MINUTE, host, gpu, uuid, user, run, *acc))
        self.store.usage.add(records)
        self.records_closed += len(records)


def max_hold_s(config: Config) -> float:
    return max(MIN_HOLD_S, HOLD_INTERVALS * config.gpu.interval_s)


def build_accountant(config: Config, store: Store) -> UsageAccountant | None:
    """The accountant, ticking at the GPU collector's interval; None when GPUs are disabled."""
    if not config.gpu.enabled:
        return None
    return UsageAccountant(store, config.gpu.interval_s, config.thresholds.gpu_idle_util_percent,
                           max_hold_s(config))
