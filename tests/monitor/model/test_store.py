"""Ring buffer, store cursors, the 1-minute tier and the event log: behaviour, not coverage."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from monitor.model.ringbuffer import RingBuffer
from monitor.model.samples import Sample, SampleBatch, make_labels
from monitor.model.store import Store


def fill(store: Store, name: str, points: list[tuple[float, float]], interval_s: float = 1.0, **labels: object) -> None:
    for t, v in points:
        batch = SampleBatch(store.host, t)
        batch.add(name, v, **labels)
        store.append(batch.samples, interval_s)


def key(store: Store, name: str, **labels: object) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (name, make_labels(host=store.host, **labels))


def test_ring_buffer_wraps_and_keeps_only_the_newest() -> None:
    ring = RingBuffer(4)
    for i in range(1, 11):
        ring.append(i, float(i), i * 10.0)
    chunk = ring.read_after(0)
    assert len(ring) == 4
    assert chunk.seqs.tolist() == [7, 8, 9, 10]
    assert chunk.values[:, 0].tolist() == [70.0, 80.0, 90.0, 100.0]
    assert ring.latest() == (10.0, (100.0,))


def test_ring_buffer_cursor_returns_only_new_rows() -> None:
    ring = RingBuffer(8)
    for i in range(1, 6):
        ring.append(i, float(i), float(i))
    first = ring.read_after(0)
    assert first.cursor == 5
    assert len(ring.read_after(first.cursor)) == 0
    ring.append(6, 6.0, 6.0)
    ring.append(7, 7.0, 7.0)
    assert ring.read_after(first.cursor).seqs.tolist() == [6, 7]
    # A cursor older than the oldest kept row gets what is left, in order.
    for i in range(8, 30):
        ring.append(i, float(i), float(i))
    assert ring.read_after(3).seqs.tolist() == list(range(22, 30))
    assert ring.read_after(0, limit=3).seqs.tolist() == [27, 28, 29]


def test_ring_buffer_rejects_zero_capacity() -> None:
    with pytest.raises(ValueError, match="capacity"):
        RingBuffer(0)


def test_store_series_have_host_label_and_capacity_from_window() -> None:
    store = Store("lab-1", window_s=10)
    fill(store, "gpu_utilization_percent", [(float(t), t) for t in range(100)], gpu=0)
    k = key(store, "gpu_utilization_percent", gpu=0)
    assert k in store.keys("gpu_")
    assert dict(k[1])["host"] == "lab-1"
    chunk = store.read_after(k, 0)
    assert chunk is not None and len(chunk) == store.capacity_for(1.0) == 11
    assert chunk.times[-1] == 99.0


def test_store_global_cursor_reads_only_new_points_across_series() -> None:
    store = Store("h", window_s=60)
    fill(store, "a", [(1.0, 1.0), (2.0, 2.0)])
    fill(store, "b", [(1.0, 5.0)])
    cursor = store.cursor
    assert store.changed_after(cursor) == {}
    fill(store, "b", [(2.0, 6.0)])
    changed = store.changed_after(cursor)
    assert list(changed) == [key(store, "b")]
    assert changed[key(store, "b")].values[:, 0].tolist() == [6.0]
    assert store.changed_after(0, name_prefix="a").keys() == {key(store, "a")}


def test_store_skips_non_finite_values() -> None:
    store = Store("h")
    store.append([Sample("x", make_labels(host="h"), 1.0, float("nan")),
                  Sample("x", make_labels(host="h"), 2.0, float("inf"))], 1.0)
    assert store.keys() == []


def test_day_tier_keeps_minute_mean_and_max() -> None:
    store = Store("h", window_s=60)
    # Three minutes of samples at 1 s: minute m has values m*100 + (0..59).
    points = [(60.0 * m + s, m * 100.0 + s) for m in range(3) for s in range(60)]
    fill(store, "x", points)
    day = store.read_day_after(key(store, "x"), 0)
    assert day is not None
    assert day.times.tolist() == [0.0, 60.0]  # the third minute is still open
    assert day.values[:, 0].tolist() == pytest.approx([29.5, 129.5])
    assert day.values[:, 1].tolist() == [59.0, 159.0]
    assert store.open_bucket(key(store, "x")) == (120.0, pytest.approx(229.5), 259.0)
    # Raw tier holds only the window; the day tier still has the first minute.
    raw = store.read_after(key(store, "x"), 0)
    assert raw is not None and raw.times[0] > 60.0


def test_day_tier_is_bounded_to_24_hours() -> None:
    store = Store("h", window_s=60)
    t = np.arange(0, 26 * 3600, 30.0)  # 26 h at 30 s
    fill(store, "x", [(float(x), 1.0) for x in t], interval_s=30.0)
    day = store.read_day_after(key(store, "x"), 0)
    assert day is not None and len(day) == 24 * 60
    assert day.times[-1] - day.times[0] == (24 * 60 - 1) * 60.0


def test_day_tier_cursor_is_incremental() -> None:
    store = Store("h", window_s=60)
    fill(store, "x", [(float(s), 1.0) for s in range(0, 125)])
    first = store.read_day_after(key(store, "x"), 0)
    assert first is not None and len(first) == 2
    fill(store, "x", [(float(s), 1.0) for s in range(125, 181)])
    again = store.read_day_after(key(store, "x"), first.cursor)
    assert again is not None and again.times.tolist() == [120.0]


def test_day_tier_can_be_switched_off() -> None:
    store = Store("h", day_tier=False)
    fill(store, "x", [(0.0, 1.0), (61.0, 2.0)])
    assert store.read_day_after(key(store, "x"), 0) is None


def test_store_memory_is_bounded_by_series_cap() -> None:
    store = Store("h", window_s=10, max_series=50)
    for i in range(200):
        fill(store, "proc", [(float(i), 1.0)], pid=i)
    assert store.stats()["series"] == 50
    assert key(store, "proc", pid=199) in set(store.keys())
    assert key(store, "proc", pid=0) not in set(store.keys())


def test_store_is_thread_safe_under_concurrent_writers_and_readers() -> None:
    store = Store("h", window_s=100_000)
    writers = 4
    per_writer = 2000
    errors: list[BaseException] = []
    seen: list[int] = []

    def write(w: int) -> None:
        for i in range(per_writer):
            fill(store, "x", [(float(i), float(i))], w=w)

    def read() -> None:
        cursor = 0
        try:
            for _ in range(300):
                for chunk in store.changed_after(cursor).values():
                    seen.append(len(chunk))
                cursor = store.cursor
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    threads.append(threading.Thread(target=read))
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    # Each raw point and each closed minute bucket took exactly one sequence number.
    assert store.cursor == writers * (per_writer + per_writer // 60)
    for w in range(writers):
        chunk = store.read_after(key(store, "x", w=w), 0)
        assert chunk is not None and len(chunk) == per_writer
        assert np.all(np.diff(chunk.seqs) > 0)


def test_event_log_is_bounded_and_read_by_cursor() -> None:
    store = Store("h", event_capacity=10)
    for i in range(25):
        store.events.add("info", "test", f"event {i}", time=float(i))
    events = store.events.read_after(0)
    assert [e.text for e in events] == [f"event {i}" for i in range(15, 25)]
    cursor = events[-1].seq
    assert store.events.read_after(cursor) == []
    store.events.add("error", "gpu", "GPU 1 lost")
    new = store.events.read_after(cursor)
    assert [(e.level, e.source, e.text) for e in new] == [("error", "gpu", "GPU 1 lost")]
    assert store.events.read_after(0, limit=2)[-1].text == "GPU 1 lost"


def test_state_documents_keep_latest_with_time() -> None:
    store = Store("h")
    assert store.state("gpu") is None
    store.set_state("gpu", {"gpus": []}, time=5.0)
    store.set_state("gpu", {"gpus": [1]}, time=6.0)
    assert store.state("gpu") == (6.0, {"gpus": [1]})
