"""The plain values that flow from collectors to the store: samples, series keys and events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# A series is a metric name plus its labels; labels are kept sorted so equal label sets compare equal.
Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]
Level = Literal["info", "warning", "error"]


def make_labels(**labels: object) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


def label_value(labels: Labels, name: str) -> str | None:
    for key, value in labels:
        if key == name:
            return value
    return None


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: Labels
    time: float
    value: float

    @property
    def key(self) -> SeriesKey:
        return (self.name, self.labels)


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    time: float
    level: Level
    source: str
    text: str

    def as_dict(self) -> dict[str, object]:
        return {"seq": self.seq, "time": self.time, "level": self.level, "source": self.source, "text": self.text}


class SampleBatch:
    """Collects the samples of one collection round, all with the same time and host label."""

    __slots__ = ("host", "samples", "time")

    def __init__(self, host: str, time: float) -> None:
        self.host = host
        self.time = time
        self.samples: list[Sample] = []

    def add(self, name: str, value: float | None, **labels: object) -> None:
        """Record `value` for series `name`; None (field not supported or unknown) is skipped."""
        if value is None:
            return
        self.samples.append(Sample(name, make_labels(host=self.host, **labels), self.time, float(value)))
