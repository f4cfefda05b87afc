"""TensorBoard event files (`events.out.tfevents.*`), read with TensorBoard's own reader.

`EventFileLoader` (tensorboard.backend.event_processing.event_file_loader) works without
TensorFlow: its fallback record reader checks each record's CRC, keeps a partial record at the end
of the file until it is complete, and opens the file only for each read (no file handle is held,
which matters with hundreds of runs). Scalars are summary values whose plugin is "scalars"
(TensorBoard's `data_compat` turns old `simple_value`s into those); the plugin is named only on a
tag's first value, so it is remembered per tag. A replaced or truncated file gets a fresh loader.
A directory holding event files is a `tensorboard` run (one run per directory, as TensorBoard does);
its event files are read in name order as one stream.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from collectors.runs.format_spec import FileKind, Listing, Match, RunFormat
from collectors.runs.parsed import Parsed
from collectors.runs.sources import GroupSource, SourceSettings, merge_streamed
from monitor.model.run_registry import RunRegistry

Rename = Callable[[str], str]
MAX_EVENTS_PER_POLL = 200_000
EVENTS_PREFIX = "events.out.tfevents."


def _loader_class() -> Any:
    # Imported on first use: TensorBoard's import costs ~0.5 s and most labs have no event files.
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    return EventFileLoader


def _scalar(tensor: Any) -> float | None:
    from tensorboard.util import tensor_util

    array = tensor_util.make_ndarray(tensor)
    if array.size != 1 or array.dtype.kind not in "fiub":
        return None
    return float(array.reshape(-1)[0])


class EventFileReader:
    def __init__(self, path: str, rename: Rename | None = None) -> None:
        self.path = path
        self.rename = rename
        self._loader: Any = None
        self._identity: tuple[int, int] | None = None
        self._size = -1
        self._scalar_tags: dict[str, bool] = {}
        self.events = 0
        self.mtime = 0.0

    def poll(self, parsed: Parsed) -> tuple[bool, bool]:
        """Read new events into `parsed`; returns (reset, more). Raises OSError if unreadable."""
        st = os.stat(self.path)
        self.mtime = st.st_mtime
        identity = (st.st_dev, st.st_ino)
        reset = False
        if self._loader is not None and (identity != self._identity or st.st_size < self._size):
            self._loader = None
            self._scalar_tags.clear()
            reset = True
        if self._loader is not None and st.st_size == self._size:
            return reset, False
        if self._loader is None:
            self._loader = _loader_class()(self.path)
        self._identity, self._size = identity, st.st_size
        count = 0
        more = False
        for event in self._loader.Load():
            count += 1
            if event.HasField("summary"):
                self._summary(event, parsed, self.events + count)
            if count >= MAX_EVENTS_PER_POLL:
                more = True
                self._size = -1  # not everything read: poll again even if the size stays
                break
        self.events += count
        return reset, more

    def _summary(self, event: Any, parsed: Parsed, record: int) -> None:
        step, wall_time = int(event.step), float(event.wall_time)
        found = False
        for value in event.summary.value:
            tag = value.tag
            if value.HasField("metadata"):
                plugin = value.metadata.plugin_data.plugin_name
                self._scalar_tags[tag] = plugin == "scalars" or value.metadata.data_class == 1
            if not self._scalar_tags.get(tag) or not value.HasField("tensor"):
                continue
            number = _scalar(value.tensor)
            if number is None:
                continue
            name = self.rename(tag) if self.rename else tag
            if number - number != 0:
                parsed.add_bad(record, f"{name!r} is {'NaN' if number != number else 'infinite'} at step {step}")
                continue
            parsed.add_point(name, step, wall_time, number)
            found = True
        if found:
            parsed.records += 1
            parsed.progress.append((wall_time, step))


class EventFilesSource(GroupSource):
    """The event files of one run, read in name order as one stream (as TensorBoard does)."""

    def __init__(self, path: str, rename: Rename | None = None) -> None:
        super().__init__(path)
        self.name = "event files"
        self.rename = rename
        self.readers: dict[str, EventFileReader] = {}
        self.last_steps: dict[str, int] = {}

    def set_paths(self, paths: list[str]) -> None:
        for path in paths:
            if path not in self.readers:
                self.readers[path] = EventFileReader(path, self.rename)
        for path in list(self.readers):
            if path not in paths:
                del self.readers[path]

    def paths(self) -> list[str]:
        return list(self.readers)

    def poll(self, registry: RunRegistry, run_id: str, now: float) -> Parsed | None:
        parsed = Parsed(file=self.name)
        self.more = False
        self.polled = True
        changed = False
        for path in sorted(self.readers, key=lambda p: (os.path.basename(p), p)):
            reader = self.readers[path]
            before = reader.events
            try:
                _, more = reader.poll(parsed)
            except FileNotFoundError:
                continue
            self.more |= more
            if reader.events != before:
                changed = True
                self.mtime = max(self.mtime, reader.mtime)
        if parsed.has_points:
            parsed.resumed = merge_streamed(registry, run_id, parsed.points(), self.last_steps)
        return parsed if changed else None


def is_event_file(name: str) -> bool:
    return name.startswith(EVENTS_PREFIX)


def event_files(listing: Listing) -> list[str]:
    return listing.named(is_event_file)


def event_files_source(rename: Rename | None = None) -> FileKind:
    def open_group(run_dir: str, settings: SourceSettings) -> EventFilesSource:
        return EventFilesSource(run_dir, rename)

    return FileKind("tfevents", "streamed", open_group, grouped=True)


FORMAT = RunFormat(
    name="tensorboard",
    precedence=50,
    recognise=lambda listing: Match() if event_files(listing) else None,
    is_candidate=is_event_file,
    files=event_files_source(),
    companions=event_files,
    records_end=False,  # event files hold no end record
)
