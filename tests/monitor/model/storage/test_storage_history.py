"""History of one series: raw, minute or hour resolution chosen by the span, at most ~2,000 points."""

from __future__ import annotations

from pathlib import Path

import pytest
from storage_support import T0, Clock, durable, feed

from monitor.model.samples import make_labels
from monitor.model.storage.history import AmbiguousSeries, UnknownSeries, read_history
from monitor.model.storage.writes import HOUR, roll_hours

NAME = "gpu_utilization_percent"
KEY = (NAME, make_labels(host="h1", gpu=0))


def test_the_span_chooses_raw_minute_or_hour_points(tmp_path: Path) -> None:
    path = tmp_path / "labwall.db"
    store, storage = durable(path, Clock(T0 + 50 * HOUR))
    for minute in range(48 * 60):  # two days of minutes in the file, then 5 minutes of raw points
        storage.minute(KEY, T0 + 60 * minute, float(minute % 60), 100.0)
    assert storage.flush()
    assert storage.db is not None
    roll_hours(storage.db, T0 + 50 * HOUR)
    now = T0 + 48 * HOUR
    feed(store, NAME, now, 300)

    raw = read_history(store, path, NAME, {"gpu": "0"}, now + 100, now + 200)
    assert raw.step_s == 1.0 and len(raw.points) == 100 and raw.points[0] == (now + 100, 50.0, 50.0)

    minutes = read_history(store, path, NAME, {"gpu": "0"}, T0 + HOUR, T0 + 3 * HOUR)
    assert minutes.step_s == 60 and len(minutes.points) == 120
    assert minutes.points[1] == (T0 + HOUR + 60, 1.0, 100.0)

    hours = read_history(store, path, NAME, {"gpu": "0"}, T0, T0 + 48 * HOUR)  # 2,880 minutes: too many
    assert hours.step_s == HOUR and len(hours.points) == 48
    assert hours.points[0] == (T0, 29.5, 100.0)  # mean of 0..59, max of the maxima
    assert hours.as_dict()["labels"] == {"gpu": "0", "host": "h1"}


def test_unknown_and_ambiguous_series_are_named(tmp_path: Path) -> None:
    store, _ = durable(tmp_path / "labwall.db")
    feed(store, NAME, T0, 2, gpu=0)
    feed(store, NAME, T0, 2, gpu=1)
    with pytest.raises(UnknownSeries, match="no series named 'nope'"):
        read_history(store, None, "nope", {}, T0, T0 + 60)
    with pytest.raises(UnknownSeries, match="has the labels"):
        read_history(store, None, NAME, {"gpu": "7"}, T0, T0 + 60)
    with pytest.raises(AmbiguousSeries, match=r"2 'gpu_utilization_percent' series match.*gpu \(0, 1\)"):
        read_history(store, None, NAME, {}, T0, T0 + 60)
