"""Durable storage costs: prints storage's CPU with 8 simulated GPUs at 1 s (storage on vs off), the
database bytes per GPU-day (a compressed simulated day written through the real writer), and how
long after a `kill -9` and restart the wall's charts show the minutes from before it.

    .venv/bin/python bench/storage_bench.py [--quick] [--seconds N]
"""

from __future__ import annotations

import argparse
import math
import random
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from monitor.app import Monitor
from monitor.config import Config
from monitor.model.samples import Event
from monitor.model.storage import DurableStore, StorageSettings
from monitor.model.storage.writes import roll_hours
from monitor.model.store import Store
from monitor.model.usage import UsageRecord

GPUS = 8
DAY_MINUTES = 1440


def config(path: Path | None, interval_s: float = 1.0) -> Config:
    cfg = Config.model_validate({"gpu": {"backend": "simulated", "simulated_count": GPUS, "interval_s": interval_s},
                                 "storage": {"enabled": path is not None}})
    cfg.storage.path = path
    return cfg


def cpu_share(path: Path | None, seconds: float) -> tuple[float, float, int]:
    """Process CPU (share of one core) of the collectors (+ storage) over `seconds`; the writer
    thread's own CPU share; rows written."""
    monitor = Monitor(config(path))
    monitor.start()
    time.sleep(5)  # start-up (first NVML reads, series creation) is not the steady state
    cpu0, wall0 = time.process_time(), time.monotonic()
    writer0 = monitor.storage.writer_cpu_s if monitor.storage else 0.0
    time.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    writer = (monitor.storage.writer_cpu_s - writer0) if monitor.storage else 0.0
    rows = monitor.storage.rows_written if monitor.storage else 0
    monitor.stop()
    return cpu / wall, writer / wall, rows


def series_keys() -> list:
    """The series a real 8-GPU simulated store has (gpu, host, ...), after a few seconds of collection."""
    monitor = Monitor(config(None))
    monitor.start()
    time.sleep(3)
    keys = monitor.store.keys()
    monitor.stop()
    return keys


def file_bytes(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        by_table: dict[str, int] = {}
        for name, size in db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
            by_table[name] = int(size)
        page = db.execute("PRAGMA page_size").fetchone()[0]
        used = (db.execute("PRAGMA page_count").fetchone()[0] - db.execute("PRAGMA freelist_count").fetchone()[0])
    return {"file": used * page, **by_table}


def simulated_day(path: Path, keys: list, days: int = 1) -> dict[str, int]:
    """`days` days of every series' minutes (random walks), one usage record per GPU-minute and a few
    events, pushed through the journal and flushed through the real writer every 10 minutes."""
    clock = [time.time() - days * 86400 - 3600]
    start = math.floor(clock[0] / 3600) * 3600
    store = Store("bench", window_s=600)
    storage = DurableStore(store, StorageSettings(path=path, queue_max=1_000_000), clock=lambda: clock[0])
    storage.open_and_restore()
    rng = random.Random(14)
    level = {key: rng.uniform(0, 100) for key in keys}
    for minute in range(days * DAY_MINUTES):
        t = start + 60 * minute
        for key in keys:
            level[key] = min(100.0, max(0.0, level[key] + rng.gauss(0, 3)))
            mean = level[key]
            storage.minute(key, t, mean, min(100.0, mean + abs(rng.gauss(0, 5))))
        store.usage.add(UsageRecord(t, 60.0, "bench", str(g), f"GPU-{g}", f"user{g % 3}", f"run-{g}", 60.0,
                                    60.0, 0.0 if level[keys[0]] > 5 else 60.0, 40.0, 60.0 * 250)
                        for g in range(GPUS))
        if minute % 60 == 0:
            storage.event(Event(minute, t, "info", "runs", f"run run-{minute % GPUS} reached step {minute * 10}"))
        if minute % 10 == 9:
            clock[0] = t + 60
            storage.next_maintenance = math.inf
            assert storage.flush(), storage.problem
    assert storage.db is not None
    roll_hours(storage.db, start + days * 86400 + 3600)
    storage.stop()
    return file_bytes(path)


def restart_to_charts(tmp: Path, quick: bool) -> tuple[float, float, float]:
    """(s from spawn to the page live, s from the page live to its GPU chart showing pre-restart
    minutes, minutes restored) after `kill -9` of a --demo server with 8 GPUs."""
    from browser_support import launched_browser, wait_live
    from support import LabwallServer, wait_for

    settings = {"gpu": {"simulated_count": GPUS}, "storage": {"flush_s": 2 if quick else 10}}
    db = tmp / "data" / "labwall.db"
    tmp.mkdir(parents=True, exist_ok=True)
    first = LabwallServer(tmp, settings, args=["--demo"]).start()

    def minutes() -> int:
        if not db.exists():
            return 0
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(DISTINCT t) FROM minute_points").fetchone()[0])

    wait_for(lambda: minutes() >= (1 if quick else 3), 300, 1.0, what="minutes in the file")
    first.stop(signal.SIGKILL)
    second = LabwallServer(tmp, settings, args=["--demo"])
    spawned = time.monotonic()
    second.start()
    try:
        with launched_browser() as browser:
            page = browser.new_context(viewport={"width": 1920, "height": 1080}).new_page()
            page.goto(second.url)
            wait_live(page, timeout=30)
            live = time.monotonic()
            page.wait_for_function("() => { const p = document.querySelector('.wall .gpus .js-plotly-plot');"
                                   " return p && p.data[0].y.includes(null); }", timeout=30_000)
            filled = time.monotonic()
            restored = page.evaluate("() => document.querySelector('.wall .gpus .js-plotly-plot')"
                                     ".data[0].y.indexOf(null)")
    finally:
        second.stop()
    return live - spawned, filled - live, restored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs: checks the script, not the figures")
    parser.add_argument("--seconds", type=float, default=None, help="seconds of each CPU run (default 180)")
    args = parser.parse_args()
    seconds = args.seconds or (10 if args.quick else 180)
    with tempfile.TemporaryDirectory(prefix="storage-bench-") as tmp_name:
        tmp = Path(tmp_name)
        off, _, _ = cpu_share(None, seconds)
        on, writer, rows = cpu_share(tmp / "cpu.db", seconds)
        print(f"CPU, 8 simulated GPUs + host at 1 s, {seconds:g} s each: storage off {100 * off:.2f} % of a core, "
              f"on {100 * on:.2f} % (difference {100 * (on - off):+.3f} points, ratio {on / off:.2f}); "
              f"the writer thread itself {100 * writer:.4f} % ({rows} rows written)")

        keys = series_keys()
        gpu_keys = [k for k in keys if any(name == "gpu" for name, _ in k[1])]
        sizes = simulated_day(tmp / "day.db", keys)
        per_gpu = sizes["file"] / GPUS
        print(f"bytes per GPU-day: {per_gpu / 1e6:.2f} MB ({sizes['file'] / 1e6:.2f} MB for a simulated day of "
              f"{len(keys)} series, {len(gpu_keys)} of them per-GPU, {GPUS} GPUs; usage records, events, "
              "hour tier included)")
        tables = {k: v for k, v in sizes.items() if k != "file"}
        print("  by table and index: " + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sorted(tables.items(),
              key=lambda kv: -kv[1]) if v > 20_000))
        minute = sizes.get("minute_points", 0) / GPUS
        hour = sizes.get("hour_points", 0) / GPUS
        usage = sizes.get("usage", 0) / GPUS
        print(f"  per GPU-day: minute tier {minute / 1e6:.3f} MB, hour tier {hour / 1e6:.4f} MB, "
              f"usage minute records {usage / 1e6:.3f} MB")

        up, filled, restored = restart_to_charts(tmp / "restart", args.quick)
        print(f"restart after kill -9: page live {up:.1f} s after the new process was spawned; its GPU chart "
              f"showed the pre-restart minutes {filled:.2f} s after the page was live "
              f"({restored} minutes, then the gap)")


if __name__ == "__main__":
    main()
