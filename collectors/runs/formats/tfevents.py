"""TensorBoard event files (`events.out.tfevents.*`), read with TensorBoard's own reader.

`EventFileLoader` (tensorboard.backend.event_processing.event_file_loader) works without
TensorFlow: its fallback record reader checks each record's CRC, keeps a partial record at the end
of the file until it is complete, and opens the file only for each read (no file handle is held,
which matters with hundreds of runs). Scalars are summary values whose plugin is "scalars"
(TensorBoard's `data_compat` turns old `simple_value`s into those); the plugin is named only on a
tag's first value, so it is remembered per tag. A replaced or truncated file gets a fresh loader.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from collectors.runs.formats import Parsed

Rename = Callable[[str], str]
MAX_EVENTS_PER_POLL = 200_000


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


def hf_tag(tag: str) -> str:
    """HF Trainer's TensorBoardCallback names: train/loss -> loss, eval/loss -> eval_loss (as in trainer_state)."""
    head, _, rest = tag.partition("/")
    if not rest:
        return tag
    if head == "train":
        return rest
    if head in ("eval", "test"):
        return f"{head}_{rest}"
    return tag


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
