"""The runs collector: discover runs under the roots, follow their files, keep their status current.

Each tick (runs.interval_s): restart the file watcher if it died; turn file events into polls of
the files they name (or a look at the directories for unknown files); every runs.rescan_s walk
all roots again and poll every file (what network filesystems need); read new data, the live
files first and the backlog (first reads of big files) within a time budget, so a backfill of
thousands of runs never delays a live line by more than a tick; update statuses; every
runs.writer_check_s look for the processes writing the runs.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque

from collectors.base import Collector
from collectors.runs.config import RunsConfig
from collectors.runs.discovery import DiscoveryWalk, RunLayout, SniffCache, depth_below, root_of, walk_targets
from collectors.runs.format_spec import RunFormat, load_formats
from collectors.runs.health import health_detail, note_missing_roots
from collectors.runs.parsed import Parsed
from collectors.runs.run_state import RunState, sources_for
from collectors.runs.sources import Source, SourceSettings
from collectors.runs.status import RunProgress, StatusRules
from collectors.runs.watcher import RunWatcher
from collectors.runs.writers import check_writers
from monitor.model.run_registry import MainMetricRule, run_id_for
from monitor.model.store import Store

log = logging.getLogger(__name__)

TICK_BUDGET_S = 0.25  # reading work per tick before yielding (keeps the collector's health "ok")
WALK_BUDGET_S = 0.05
STATUS_EVERY_S = 1.0
TARGET_DEBOUNCE_S = 0.3


class RunsCollector(Collector):
    name = "runs"

    def __init__(self, store: Store, config: RunsConfig, formats: tuple[RunFormat, ...] | None = None) -> None:
        super().__init__(store, config.interval_s)
        self.config = config
        self.formats = load_formats() if formats is None else formats
        self.levels_up = 1 + max((f.file_depth for f in self.formats), default=0)  # from a file up to its run dir
        self.settings = SourceSettings(config.max_line_bytes, config.unterminated_line_s)
        self.roots = [os.path.abspath(str(r)) for r in config.roots]
        self.rules = StatusRules(config.stall_factor, config.stall_min_s)
        self.registry = store.runs
        self.registry.configure(
            max_points=config.max_points_per_metric,
            forget_after_s=config.forget_after_s,
            main_metric=[MainMetricRule(r.run, r.metric) for r in config.main_metric],
        )
        self.runs: dict[str, RunState] = {}
        self.sources: dict[str, tuple[str, Source]] = {}  # source key -> (run id, source)
        self.owner: dict[str, str] = {}  # file path -> source key
        self.live: dict[str, None] = {}  # source keys to poll this tick (ordered set)
        self.backlog: deque[str] = deque()
        self.in_backlog: set[str] = set()
        self.retries: dict[str, float] = {}
        self.sniff = SniffCache(self.formats)
        self.watcher: RunWatcher | None = None
        self.walk: DiscoveryWalk | None = None
        self.walk_targets: list[str] = []
        self.pending_targets: dict[str, bool] = {}  # directory -> descend
        self.targets_since = 0.0
        self.initial_scan_done = False
        self.next_full_scan = 0.0
        self.next_status = 0.0
        self.next_writer_check = 0.0
        self.next_forget = 0.0
        self.problems: dict[str, str] = {}
        self.reported: set[str] = set()
        self.missing_roots: list[str] = []
        self.last_rescan: float | None = None  # when the last full walk of the roots ended
        self.dirty: set[str] = set()  # runs whose status must be derived again

    # -- lifecycle -------------------------------------------------------------------------------
    def setup(self) -> None:
        if self.config.use_events and self.watcher is None:
            self.watcher = RunWatcher(self.store.events)
            self.watcher.start(self.roots)

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None

    # -- one tick --------------------------------------------------------------------------------
    def collect(self, now: float) -> None:
        started = time.monotonic()
        if self.watcher is not None:
            self.watcher.ensure_running()
            paths, lost = self.watcher.drain()
            self._route_events(paths, now)
            if lost:  # a handler failed, the observer restarted or its queue overflowed: walk everything now
                self.next_full_scan = 0.0
        if now >= self.next_full_scan and self.walk is None:
            self.walk = DiscoveryWalk(self.roots, self.config.max_depth, self.sniff, self.formats)
            self.walk_targets = []
            self.next_full_scan = now + self.config.rescan_s
            for key in self.sources:  # the rescan: every file is looked at (NFS sends no events)
                self.live[key] = None
        elif self.walk is None and self.pending_targets and now - self.targets_since >= TARGET_DEBOUNCE_S:
            self._start_targeted_walk()
        if self.walk is not None and self.walk.step(WALK_BUDGET_S):
            walk, self.walk = self.walk, None
            self._reconcile(walk, now)
        for key, when in list(self.retries.items()):
            if when <= now:
                del self.retries[key]
                self.live[key] = None
        self._read(started + TICK_BUDGET_S, now)
        if now >= self.next_status or self.dirty:
            self._update_statuses(now, everything=now >= self.next_status)
        if self.config.writer_check_s and now >= self.next_writer_check:
            self.next_writer_check = now + self.config.writer_check_s
            self._check_writers(now)
        if now >= self.next_forget:
            self.next_forget = now + min(10.0, max(0.2, self.config.forget_after_s / 4))
            for run_id in self.registry.forget_expired(now):
                self._drop_run(run_id)

    # -- events ----------------------------------------------------------------------------------
    def _route_events(self, paths: set[str], now: float) -> None:
        for path in paths:
            key = self.owner.get(path)
            if key is not None:
                self.live[key] = None
                continue
            targets = walk_targets(path, self.roots, self.formats, self.config.max_depth, self.levels_up)
            for directory, descend in targets.items():
                if descend:
                    self.pending_targets[directory] = True
                else:
                    self.pending_targets.setdefault(directory, False)
            if targets:
                self.targets_since = self.targets_since or now

    def _start_targeted_walk(self) -> None:
        starts = []
        for path, descend in self.pending_targets.items():
            root = root_of(path, self.roots)
            if root is not None:
                depth = depth_below(path, root)
                if depth <= self.config.max_depth:
                    starts.append((path, root, depth, descend))
        self.walk_targets = list(self.pending_targets)
        self.pending_targets = {}
        self.targets_since = 0.0
        self.walk = DiscoveryWalk.targeted(starts, self.config.max_depth, self.sniff, self.formats)

    # -- discovery -------------------------------------------------------------------------------
    def _reconcile(self, walk: DiscoveryWalk, now: float) -> None:
        full = not self.walk_targets
        if full:
            self.missing_roots = note_missing_roots(self.store.events, self.missing_roots, walk.missing_roots)
            self.problems = dict(walk.problems)
            self.sniff.forget_missing(walk.sniffed_files)
            if len(self.reported) > 10_000:
                self.reported.clear()  # bounded: a problem still there is reported once more
        else:
            self.problems.update(walk.problems)
        for path, reason in walk.problems.items():
            if path not in self.reported:
                self.reported.add(path)
                self.store.events.add("warning", "runs", f"run discovery skipped {path}: {reason}")
        for layout in walk.layouts.values():
            self._upsert(layout, now)
        for layout in walk.layouts.values():
            if layout.claimed_dirs:
                self._absorb_claimed(layout)
        found = set(walk.layouts)
        for state in list(self.runs.values()):
            path = state.layout.path
            if state.deleted or path in found:
                continue
            if any(path == m or path.startswith(m.rstrip(os.sep) + os.sep) for m in self.missing_roots):
                continue  # an unmounted root is reported; its runs are not "deleted"
            gone = not os.path.isdir(path)
            if full or path in walk.visited or (gone and any(
                path == t or path.startswith(t + os.sep) for t in self.walk_targets
            )):
                self._vanish(state, "directory removed" if gone else "no run files left")
        if full and not self.initial_scan_done:
            self.initial_scan_done = True
            self.store.events.add("info", "runs", f"found {len(self.runs)} runs under {len(self.roots)} root(s)")
        if full:
            self.last_rescan = time.time()  # when it ended: what came before it has been looked at
        self._report_health(now)

    def _upsert(self, layout: RunLayout, now: float) -> None:
        run_id = run_id_for(layout.path, layout.dir_name)
        state = self.runs.get(run_id)
        if state is not None and state.deleted:  # the directory came back (or a new run took its name)
            self._drop_sources(state)
            self.store.events.add("info", "runs", f"run started: {layout.name} ({layout.format})")
            state.deleted = False
            state.progress = RunProgress()
            state.loaded = state.settled = False
            state.announce = True
        if state is None:
            announce = self.initial_scan_done
            state = self.runs[run_id] = RunState(run_id, layout, announce=announce)
            self.registry.add_run(run_id, layout.name, layout.path, layout.root, layout.format, now, announce=announce)
        elif state.layout.format != layout.format:
            # Logs are read differently per format (an HF stdout log's steps): read the run again from the start.
            self.registry.add_run(run_id, layout.name, layout.path, layout.root, layout.format, now)
            self._drop_sources(state)
            self.registry.restart(run_id)
            state.progress = RunProgress()
        state.layout = layout
        state.progress.records_end = layout.spec.records_end
        self.registry.set_files(run_id, [*layout.all_files(), *layout.hyperparameters])  # for the run's page
        self._sync_sources(state)
        self.dirty.add(run_id)

    def _sync_sources(self, state: RunState) -> None:
        wanted = sources_for(state.layout, state.sources, self.settings)
        for key in [k for k in state.sources if k not in wanted]:
            self._unmap(key)
        for key, source in wanted.items():
            new = key not in self.sources
            self.sources[key] = (state.id, source)
            for path in source.paths():
                if self.owner.get(path) != key:
                    self.owner[path] = key
                    new = True  # a new file in a group: read it
            if new:
                self._to_backlog(key)
        state.sources = wanted

    def _absorb_claimed(self, layout: RunLayout) -> None:
        """Runs found earlier in a run's claimed subdirectories (an HF output dir's runs/, checkpoint-N/) join it."""
        claimed = [os.path.join(layout.path, d) for d in layout.claimed_dirs]
        for state in list(self.runs.values()):
            path = state.layout.path
            if any(path == c or path.startswith(c + os.sep) for c in claimed):
                self._drop_run(state.id)
                self.registry.remove(state.id)

    def _vanish(self, state: RunState, reason: str) -> None:
        self._drop_sources(state)
        state.deleted = True
        self.registry.set_status(state.id, "deleted", reason, announce=True)

    def _drop_sources(self, state: RunState) -> None:
        for key in list(state.sources):
            self._unmap(key)
        state.sources = {}

    def _drop_run(self, run_id: str) -> None:
        state = self.runs.pop(run_id, None)
        if state is not None:
            self._drop_sources(state)

    def _unmap(self, key: str) -> None:
        entry = self.sources.pop(key, None)
        if entry is not None:
            for path in entry[1].paths():
                if self.owner.get(path) == key:
                    del self.owner[path]
        self.live.pop(key, None)
        self.retries.pop(key, None)
        self.in_backlog.discard(key)

    def _to_backlog(self, key: str) -> None:
        if key not in self.in_backlog:
            self.in_backlog.add(key)
            self.backlog.append(key)

    # -- reading ---------------------------------------------------------------------------------
    def _read(self, deadline: float, now: float) -> None:
        # Live files first (a new line must not wait behind a backfill), then the backlog, both within
        # the tick's budget; what is left waits for the next tick.
        live_deadline = deadline + TICK_BUDGET_S
        while self.live and time.monotonic() < live_deadline:
            key = next(iter(self.live))
            del self.live[key]
            if key not in self.in_backlog:  # a file being backfilled is read in its backlog turn
                self._poll(key, now)
        while self.backlog and time.monotonic() < deadline:
            key = self.backlog.popleft()
            if key in self.in_backlog:
                self.in_backlog.discard(key)
                self._poll(key, now)

    def _poll(self, key: str, now: float) -> None:
        entry = self.sources.get(key)
        if entry is None:
            return
        run_id, source = entry
        state = self.runs.get(run_id)
        if state is None:
            return
        try:
            parsed = source.poll(self.registry, run_id, now)
        except FileNotFoundError:
            self.pending_targets.setdefault(os.path.dirname(source.path), False)
            self.targets_since = self.targets_since or now
            return
        except Exception as exc:  # one unreadable file never stops the others
            self._source_failed(source, exc)
            return
        if source.error is not None:
            self.problems.pop(source.path, None)
            source.error = None
        if source.more:
            self._to_backlog(key)
        if source.retry_at is not None:
            self.retries[key] = source.retry_at
        if parsed is not None:
            self._apply(state, source, parsed, now)

    def _source_failed(self, source: Source, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, OSError) else (exc.strerror or str(exc))
        if source.error != reason:
            source.error = reason
            self.problems[source.path] = f"cannot be read: {reason}"
            if source.path not in self.reported:
                self.reported.add(source.path)
                if not isinstance(exc, OSError):
                    log.warning("reading %s failed", source.path, exc_info=exc)
                self.store.events.add("warning", "runs", f"cannot read {source.path}: {reason}")

    def _apply(self, state: RunState, source: Source, parsed: Parsed, now: float) -> None:
        registry = self.registry
        if parsed.texts:
            registry.set_texts(state.id, parsed.texts)
        if parsed.bad and parsed.first_bad is not None:
            registry.note_bad_lines(state.id, parsed.bad, parsed.file, *parsed.first_bad)
        if parsed.params:
            state.params[source.path] = {**state.params.get(source.path, {}), **parsed.params}
            registry.set_params(state.id, {k: v for values in state.params.values() for k, v in values.items()})
        # New data while watching, or files that changed within stall_min_s of being found: a live run, so
        # one that goes quiet now is stalled (an old run found on disk reads "finished" instead).
        if parsed.records and (state.loaded or state.announce or now - source.mtime <= self.rules.stall_min_s):
            state.progress.seen_live = True
        record = registry.get(state.id)
        state.progress.apply(parsed, source.path, record.step if record else None)
        seen = source.mtime if not state.loaded else max(now, source.mtime)
        state.progress.last_activity = max(state.progress.last_activity, min(seen, now))
        self.dirty.add(state.id)

    # -- status ----------------------------------------------------------------------------------
    def _update_statuses(self, now: float, everything: bool) -> None:
        if everything:
            self.next_status = now + STATUS_EVERY_S
            self._report_health(now)
        dirty, self.dirty = self.dirty, set()
        for state in self.runs.values() if everything else [self.runs[i] for i in dirty if i in self.runs]:
            if state.deleted or not (state.id in dirty or state.time_bound):
                continue  # only new data changes a finished, crashed or stalled run
            if not state.loaded and all(s.polled for s in state.sources.values()) and not any(
                key in self.in_backlog for key in state.sources
            ):
                state.loaded = True
            progress = state.progress
            status, reason = progress.derive(now, self.rules)
            rate, eta = progress.eta(status)
            self.registry.update(
                state.id,
                step=progress.step,
                updated=progress.last_activity or None,
                total_steps=progress.total,
                rate_steps_per_s=rate,
                eta_s=eta,
                writer_pids=sorted(progress.writers),
            )
            # The first status of a run found on disk is not news; later changes are announced.
            self.registry.set_status(state.id, status, reason, announce=state.settled)
            state.time_bound = status == "running" or not state.loaded  # time alone can make it stall
            if state.loaded:
                state.settled = True

    def _check_writers(self, now: float) -> None:
        recent = now - max(3600.0, self.rules.stall_min_s)
        active = {
            s.id: (s.layout.path, s.progress) for s in self.runs.values()
            if not s.deleted and s.progress.marker is None and (s.progress.writers or s.progress.last_activity > recent)
        }
        for run_id in check_writers(active):
            self.dirty.add(run_id)

    # -- health ----------------------------------------------------------------------------------
    def _report_health(self, now: float) -> None:
        self.health.detail = health_detail(self, now)
