"""The wall's shared feed without a browser: one frame per tick for every viewer, only new points,
only changed cells, the day tier for long windows, and "n/a" rather than errors for missing data."""

from __future__ import annotations

import time
from typing import Any

from monitor.config import parse_config
from monitor.model.samples import Sample, make_labels
from monitor.model.store import Store
from monitor.wall import charts, gpu_tiles, header, host_panel
from monitor.wall.feed import WallFeed

GIB = 1024**3


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def gpu(index: int, util: float | None = 50.0, **fields: Any) -> dict[str, Any]:
    doc = {"index": index, "uuid": f"GPU-{index}", "name": "NVIDIA A100-SXM4-80GB", "status": "ok",
           "utilization_gpu_percent": util, "memory_used_bytes": 40 * GIB, "memory_total_bytes": 80 * GIB,
           "temperature_celsius": 60, "power_draw_watts": 300.0, "power_limit_watts": 400.0,
           "processes": [{"pid": 1, "user": "alice", "command": "python train.py", "gpu_memory_bytes": 39 * GIB}]}
    doc.update(fields)
    return doc


def setup(gpus: int = 2, **config: Any) -> tuple[Store, WallFeed, Clock]:
    cfg = parse_config({"host_label": "h", "gpu": {"backend": "simulated"}, **config})
    store = Store("h", cfg.history.window_s, cfg.history.day_tier)
    clock = Clock()
    feed = WallFeed(store, cfg, clock=clock)
    tick(store, clock, [gpu(i) for i in range(gpus)])
    return store, feed, clock


def tick(store: Store, clock: Clock, gpus: list[dict[str, Any]], advance: float = 1.0) -> None:
    clock.t += advance
    samples = []
    for g in gpus:
        labels = make_labels(host="h", gpu=g["index"], uuid=g["uuid"])
        if g["utilization_gpu_percent"] is not None:
            samples.append(Sample("gpu_utilization_percent", labels, clock.t, g["utilization_gpu_percent"]))
        samples.append(Sample("gpu_memory_used_bytes", labels, clock.t, g["memory_used_bytes"]))
    samples.append(Sample("host_cpu_percent", make_labels(host="h"), clock.t, 12.0))
    store.append(samples, 1.0)
    store.set_state("gpu", {"backend": "simulated", "simulated": True, "state": "ok", "gpus": gpus}, clock.t)
    store.set_state("system", {"cpu_percent": 12.0, "cpu_per_core_percent": [10.0, 14.0]}, clock.t)


def test_one_frame_per_tick_serves_every_viewer() -> None:
    _, feed, clock = setup()
    first = feed.latest()
    clock.t += 0.3  # another page asks within the same tick
    assert feed.latest() is first
    clock.t += 0.7
    assert feed.latest().number == first.number + 1
    assert feed.frames_made == 2


def test_a_frame_carries_only_the_new_points() -> None:
    store, feed, clock = setup()
    first = feed.latest()
    tick(store, clock, [gpu(0, util=70.0), gpu(1, util=20.0)])
    second = feed.latest()
    assert second.base == first.cursor and second.cursor == store.cursor
    points = second.points["g0"]
    assert points.indices == [0, 1]
    assert points.update["y"] == [[70], [50]]  # utilisation %, memory as % of the total
    assert len(points.update["x"][0]) == 1
    # a page in step applies just this frame; the chain from its frame number is unbroken
    assert feed.since(first.number) == [second]


def test_only_changed_cells_are_listed() -> None:
    store, feed, clock = setup()
    feed.latest()
    tick(store, clock, [gpu(0, util=90.0), gpu(1)])
    frame = feed.latest()
    assert "g0.util" in frame.changed and "g1.util" not in frame.changed
    assert "hdr.clock" in frame.changed
    assert frame.cells["g0.util"].text == "90" and frame.cells["g0.util"].pct == 90


def test_a_new_gpu_changes_the_layout() -> None:
    store, feed, clock = setup(gpus=2)
    before = feed.latest().layout
    tick(store, clock, [gpu(0), gpu(1), gpu(2)])
    assert feed.latest().layout != before


def test_missing_fields_show_na() -> None:
    cfg = parse_config({})
    bare = {"index": 0, "uuid": None, "name": None, "status": "ok", "processes": None,
            "utilization_gpu_percent": None, "memory_used_bytes": None, "memory_total_bytes": None,
            "temperature_celsius": float("nan"), "power_draw_watts": None, "power_limit_watts": None}
    cells = gpu_tiles.tile_cells(0, bare, cfg)
    assert cells["g0.util"].text == "n/a" and cells["g0.temp"].text == "n/a"
    assert cells["g0.power"].text == "n/a" and cells["g0.name"].text == "unknown GPU"
    assert cells["g0.none"].level == ""  # "no processes" shown
    host = host_panel.host_cells({}, cfg)
    assert host["h.cpu"].text == "n/a" and host["h.rx"].text == "n/a"


def test_no_driver_says_why() -> None:
    cfg = parse_config({})
    doc = {"backend": "nvml", "simulated": False, "state": "unavailable", "reason": "no NVIDIA driver found",
           "gpus": []}
    cells = gpu_tiles.gpu_cells(doc, cfg)
    assert cells["gpu.n.reason"].text == "no NVIDIA driver found"
    assert cells["gpu.n.title"].text == "No GPUs on this host"


def test_lost_gpu_is_marked() -> None:
    cells = gpu_tiles.tile_cells(0, gpu(0, status="lost", lost_reason="GPU is lost"), parse_config({}))
    assert cells["g0.tile"].level == "lost" and cells["g0.state"].text == "LOST"
    assert cells["g0.lost"].text == "Lost: GPU is lost" and cells["g0.lost"].level == ""


def test_a_recent_xid_error_is_named_on_its_tile() -> None:
    now = time.time()
    recent = gpu(0, xid_errors=[{"time": now - 7200, "code": 13}, {"time": now - 60, "code": 79}])
    cells = gpu_tiles.tile_cells(0, recent, parse_config({}))
    assert f"XID 79 at {time.strftime('%H:%M:%S', time.localtime(now - 60))}" in cells["g0.extra"].text
    assert cells["g0.extra"].level == "crit"
    old = gpu(0, xid_errors=[{"time": now - 7200, "code": 13}])  # an hour later the tile is quiet again
    assert "XID" not in gpu_tiles.tile_cells(0, old, parse_config({}))["g0.extra"].text


def test_stale_after_three_intervals() -> None:
    cfg = parse_config({})
    now = 1_800_000_000.0
    fresh = header.freshness(now, cfg, (now - 1.0, {}), (now - 1.0, {}), now - 100)
    assert fresh[0].text == "LIVE" and not fresh[2]
    stale = header.freshness(now, cfg, (now - 10.0, {}), (now - 1.0, {}), now - 100)
    assert stale[0].text == "STALE" and stale[2] and "GPU data" in stale[1].text
    no_driver = header.freshness(now, cfg, (now - 50.0, {"state": "unavailable"}), (now - 1.0, {}), now - 100)
    assert not no_driver[2]  # a GPU source without a driver is not expected to tick


def test_long_windows_use_the_day_tier() -> None:
    store, feed, clock = setup(history={"window_s": 120}, wall={"chart_window_s": 86400})
    assert feed.window.day_tier and feed.window.max_points(1.0) == 1441
    first = feed.latest()
    for _ in range(130):  # two minutes: the first minute bucket closes
        tick(store, clock, [gpu(0), gpu(1)])
    frame = feed.latest()
    refs = frame.charts["g0"]
    points = charts.new_points(store, refs, first.cursor, frame.cursor, feed.window)
    assert points is not None and 1 <= len(points.update["x"][0]) <= 3  # minute buckets, not 130 points
    history = charts.history(store, refs, frame.cursor, clock.t, feed.window)
    assert 1 <= len(history[0][0]) <= 3
