"""TensorBoard event files (`events.out.tfevents.*`), read as TensorBoard reads them.

The records are framed and CRC-checked by `tfrecord.RecordFile` (as TensorBoard's reader does: a
partial record at the end waits until it is complete, a record failing its CRC stops the reading
there; the file is opened only for each read, which matters with hundreds of runs) and parsed with
TensorBoard's `Event` protobuf. Scalars are summary values whose plugin is "scalars"; the plugin is
named only on a tag's first value, so it is remembered per tag. An event is handed to TensorBoard's
own `data_compat` and `dataclass_compat` migrations (what its `EventFileLoader` does, old
`simple_value`s becoming scalar tensors) unless it holds only `simple_value`s without metadata of
tags already seen: those the migrations would turn into plain scalars, so they are read directly
(10x faster than the loader, whose pure-Python CRC and per-event migration cost ~40 us an event).
A replaced or truncated file is read again from the start. A directory holding event files is a
`tensorboard` run (one run per directory, as TensorBoard does); its event files are read in name
order as one stream.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from collectors.runs.format_spec import FileKind, Listing, Match, RunFormat
from collectors.runs.formats.tfrecord import RecordFile
from collectors.runs.parsed import Parsed
from collectors.runs.sources import GroupSource, SourceSettings, merge_streamed
from monitor.model.run_registry import RunRegistry

Rename = Callable[[str], str]
MAX_EVENTS_PER_POLL = 200_000
EVENTS_PREFIX = "events.out.tfevents."


def _compat() -> tuple[Any, Any, Any]:
    # Imported on first use: TensorBoard's import costs ~0.5 s and most labs have no event files.
    from tensorboard import data_compat, dataclass_compat
    from tensorboard.compat.proto import event_pb2

    return event_pb2.Event.FromString, data_compat.migrate_event, dataclass_compat.migrate_event


def _scalar(tensor: Any) -> float | None:
    from tensorboard.util import tensor_util

    array = tensor_util.make_ndarray(tensor)
    if array.size != 1 or array.dtype.kind not in "fiub":
        return None
    return float(array.reshape(-1)[0])


def _plain_simple(value: Any, initial_metadata: dict[str, Any]) -> bool:
    """A `simple_value` without metadata of a tag seen before: the migrations make it a plain scalar."""
    return value.WhichOneof("value") == "simple_value" and value.tag in initial_metadata and not value.HasField(
        "metadata")


class EventFileReader:
    def __init__(self, path: str, rename: Rename | None = None) -> None:
        self.path = path
        self.rename = rename
        self._records: RecordFile | None = None
        self._identity: tuple[int, int] | None = None
        self._size = -1
        self._scalar_tags: dict[str, bool] = {}
        self._initial_metadata: dict[str, Any] = {}  # dataclass_compat's memory of each tag's first metadata
        self.events = 0
        self.mtime = 0.0

    def poll(self, parsed: Parsed) -> tuple[bool, bool]:
        """Read new events into `parsed`; returns (reset, more). Raises OSError if unreadable."""
        st = os.stat(self.path)
        self.mtime = st.st_mtime
        identity = (st.st_dev, st.st_ino)
        reset = False
        if self._records is not None and (identity != self._identity or st.st_size < self._size):
            self._records = None
            self._scalar_tags.clear()
            self._initial_metadata.clear()
            reset = True
        if self._records is not None and st.st_size == self._size:
            return reset, False
        if self._records is None:
            self._records = RecordFile(self.path)
        self._identity, self._size = identity, st.st_size
        records, more = self._records.read(MAX_EVENTS_PER_POLL)
        if more:
            self._size = -1  # not everything read: poll again even if the size stays
        self.events += self._read(records, parsed)
        return reset, more

    def _read(self, records: list[bytes], parsed: Parsed) -> int:
        """Hand the events of `records` to `parsed`; returns how many events TensorBoard's loader would yield."""
        parse, migrate, migrate_dataclass = _compat()
        initial, scalar_tags, rename = self._initial_metadata, self._scalar_tags, self.rename
        count = 0
        for record in records:
            event = parse(record)
            values = event.summary.value if event.WhichOneof("what") == "summary" else None
            if values and all(_plain_simple(v, initial) for v in values):
                count += 1  # the migrations would make each value a "scalars" tensor of this float
                step, wall_time = event.step, event.wall_time
                found = False
                for value in values:
                    tag = value.tag
                    scalar_tags[tag] = True
                    found |= self._point(rename(tag) if rename else tag, value.simple_value, step, wall_time,
                                         parsed, self.events + count)
                if found:
                    parsed.records += 1
                    parsed.progress.append((wall_time, step))
                continue
            for migrated in migrate_dataclass(migrate(event), initial):
                count += 1
                if migrated.HasField("summary"):
                    self._summary(migrated, parsed, self.events + count)
        return count

    @staticmethod
    def _point(name: str, number: float, step: int, wall_time: float, parsed: Parsed, record: int) -> bool:
        if number - number != 0:
            parsed.add_bad(record, f"{name!r} is {'NaN' if number != number else 'infinite'} at step {step}")
            return False
        parsed.add_point(name, step, wall_time, number)
        return True

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
            found |= self._point(self.rename(tag) if self.rename else tag, number, step, wall_time, parsed, record)
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
