"""A new page's chart starts with the minutes restored from durable storage, then a null point (the
restart drawn as a gap), then what this process collected, with raw points or the minute tier."""

from __future__ import annotations

from storage_support import T0, feed

from monitor.model.samples import make_labels
from monitor.model.store import Store
from monitor.wall.charts import ChartWindow, SeriesRef, history

KEY = ("gpu_utilization_percent", make_labels(host="h1", gpu=0))


def restarted_store(window_s: float) -> Store:
    store = Store("h1", window_s=window_s)
    store.restore_minutes(KEY, [(T0 + 60 * m, 10.0 + m, 20.0) for m in range(5)])  # before the restart
    feed(store, KEY[0], T0 + 600, 200, value=50.0)  # after it: 200 s of points, 3 closed minutes
    return store


def test_raw_charts_start_with_the_restored_minutes_and_a_gap() -> None:
    store = restarted_store(window_s=600)
    window = ChartWindow.from_config(600, 600, True, epoch=T0)
    [(x, y)] = history(store, (SeriesRef(KEY),), store.cursor, T0 + 700, window)  # the window starts at T0+100
    assert y[:4] == [12, 13, 14, None]
    assert x[:3] == [120, 180, 240] and 240 < x[3] < x[4] == 600
    assert len(y) == 4 + 200 and None not in y[4:]


def test_minute_tier_charts_break_the_line_at_the_restart() -> None:
    store = restarted_store(window_s=60)
    window = ChartWindow.from_config(3600, 60, True, epoch=T0)
    [(x, y)] = history(store, (SeriesRef(KEY),), store.cursor, T0 + 800, window)
    assert y == [10, 11, 12, 13, 14, None, 55, 55, 55]
    assert x[4] < x[5] < x[6] == 600


def test_without_a_restore_nothing_changes() -> None:
    store = Store("h1", window_s=600)
    feed(store, KEY[0], T0, 10)
    window = ChartWindow.from_config(600, 600, True, epoch=T0)
    [(x, y)] = history(store, (SeriesRef(KEY),), store.cursor, T0 + 10, window)
    assert None not in y and len(x) == 10
