"""Soak: 1,000 viewer connect/disconnect cycles and a compressed 24 h of samples against one real
labwall server; does its memory, thread count or file-descriptor count creep?

The server is the benchmarks' wall (8 simulated GPUs + host at 1 s, charts pre-filled to 600
points, NiceGUI's 10 s reconnect grace like monitor/web/server.py). Viewers are light socket.io
clients (bench/socket_viewers.py), 10 at a time, each connected for 0.5-2 s. The 24 h of samples
come on a fake clock, as in bench/collect_bench.py: a thread in the server appends one reading of
every series the collectors produce (under a `soak_` name, so the alert rules and the charts keep
to the live data) for each simulated second, 360 simulated seconds per real second, into the same
store the wall reads. The run is cut into 5 blocks of cycles and hours; after each, once every
viewer has left and NiceGUI has dropped their clients, RSS, threads and open file descriptors of
the server are read from outside (/proc via psutil). The first block is the warm-up: growth is
counted from its end. Threads are counted apart from AnyIO's worker pool, which follows the load.
`--quick` (50 cycles, 1 h) uses a 3 s reconnect grace to stay short: it checks that the bench runs.

    .venv/bin/python bench/soak.py [--quick] [--cycles N] [--hours H]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from socket_viewers import ChurnResult, ViewerLoop, churn
from wall_bytes import Harness, bench_config, prefill, stop_on_sigterm

TARGET_GROWTH_PERCENT = 5.0
FEED_RATE = 360.0  # simulated seconds per real second: 1 h of samples every 10 s
RECONNECT_GRACE_S = 10.0  # NiceGUI keeps a disconnected client this long (monitor/web/server.py)
CONCURRENCY = 10
HOLD_S = (0.5, 2.0)
BLOCKS = 5  # the first is the warm-up


# -- the server side (`--serve`) ------------------------------------------------------------------------
class DayFeeder:
    """Appends simulated seconds of every live series on a fake clock, paced at FEED_RATE."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.clock = time.time() - 48 * 3600  # a fake clock of its own, far from the live series' times
        self.fed_s = 0
        self.busy = False
        self._lock = threading.Lock()

    def feed(self, hours: float) -> None:
        with self._lock:
            if self.busy:
                raise RuntimeError("already feeding")
            self.busy = True
        threading.Thread(target=self._run, args=(int(hours * 3600),), name="soak-feeder", daemon=True).start()

    def _run(self, seconds: int) -> None:
        from monitor.model.samples import Sample

        live = self.store.keys()  # Store.keys() is a method returning a list, not a dict view
        keys = [k for k in live if not k[0].startswith("soak_")]
        started, done = time.monotonic(), 0
        try:
            while done < seconds:
                due = min(seconds, int((time.monotonic() - started) * FEED_RATE) + 1)
                for _ in range(due - done):
                    self.clock += 1.0
                    value = float(int(self.clock) % 97)
                    self.store.append([Sample("soak_" + name, labels, self.clock, value) for name, labels in keys],
                                      1.0)
                    self.fed_s += 1
                done = due
                time.sleep(0.1)  # pace: the feeder shares the process with the wall it is soaking
        finally:
            self.busy = False


def serve(args: argparse.Namespace) -> None:
    from nicegui import app, ui
    from nicegui.client import Client

    from monitor.app import Monitor
    from monitor.model.store import Store
    from monitor.wall import register_wall
    from monitor.web.api import register_api

    config = bench_config(args.port, 600, 8, 1.0)
    store = Store(config.host_label, config.history.window_s, config.history.day_tier, config.events.capacity)
    prefill(store, config, 600)
    monitor = Monitor(config, store=store)
    register_api(app, store)
    register_wall(monitor)
    feeder = DayFeeder(store)

    # async routes: a sync one would run in anyio's worker threads and grow the thread count measured here
    @app.get("/bench/stats")
    async def stats() -> dict[str, Any]:
        pool = sum(t.name == "AnyIO worker thread" for t in threading.enumerate())
        return {"clients": len(Client.instances), "fed_s": feeder.fed_s, "feeding": feeder.busy,
                "series": store.stats()["series"], "pool_threads": pool}

    @app.get("/bench/feed")
    async def feed(hours: float) -> dict[str, Any]:
        feeder.feed(hours)
        return {"fed_s": feeder.fed_s}

    app.on_startup(monitor.start)
    app.on_shutdown(lambda: monitor.stop(timeout_s=2.0))  # a one-parameter handler would be passed the app
    ui.run(host="127.0.0.1", port=args.port, title="labwall", dark=True, reload=False, show=False,
           uvicorn_logging_level="warning", reconnect_timeout=args.grace)


# -- the bench side -------------------------------------------------------------------------------------
class SoakServer(Harness):
    """`soak.py --serve` as a subprocess on a free loopback port (Harness's stats() and stop())."""

    def __init__(self, grace: float) -> None:
        self.spawn(__file__, ["--grace", str(grace)], "soak")
        self.process = psutil.Process(self.proc.pid)

    def until(self, condition: Any, timeout: float, what: str) -> float:
        """Poll `condition` every 0.2 s; seconds it took. Fails with the server log if it never holds."""
        started = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"soak server exited: {self.log.read_text()[-2000:]}")
            try:
                if condition():
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            if time.monotonic() - started > timeout:
                raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")
            time.sleep(0.2)

    def reading(self) -> dict[str, float]:
        """RSS, open fds and threads; `own` leaves out AnyIO's worker pool, which follows the load: it
        grows with concurrent sync calls (page loads, file responses) and drops idle workers lazily."""
        threads, pool = self.process.num_threads(), self.stats()["pool_threads"]
        return {"rss": self.process.memory_info().rss / 2**20, "threads": threads, "own": threads - pool,
                "pool": pool, "fds": self.process.num_fds()}


class Peaks(threading.Thread):
    """The largest RSS of the server and the most NiceGUI clients alive at once (connected or within
    their reconnect grace), sampled every 0.5 s until stopped."""

    def __init__(self, server: SoakServer) -> None:
        super().__init__(name="peaks", daemon=True)
        self.server = server
        self.rss = 0.0
        self.clients = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            try:
                self.rss = max(self.rss, self.server.process.memory_info().rss / 2**20)
                self.clients = max(self.clients, self.server.stats()["clients"])
            except (psutil.Error, httpx.HTTPError):
                return


def phase(server: SoakServer, viewers: ViewerLoop, cycles: int, hours: float, grace: float,
          seed: int) -> tuple[ChurnResult, float]:
    """Run `cycles` viewer cycles while the server is fed `hours` of samples; then wait until both
    are done and every client is gone. Returns the viewers' result and how long the clients took to go."""
    fed_before = server.stats()["fed_s"]
    httpx.get(server.url + "/bench/feed", params={"hours": hours}, timeout=10).raise_for_status()
    result = viewers.call(churn(server.url, cycles, CONCURRENCY, HOLD_S, seed), timeout=3600)
    target = fed_before + int(hours * 3600)
    server.until(lambda: server.stats()["fed_s"] >= target and not server.stats()["feeding"],
                 hours * 3600 / FEED_RATE * 4 + 60, "the fake clock to finish its hours")
    gone = server.until(lambda: server.stats()["clients"] == 0, grace + 60,
                        "NiceGUI to drop every client")
    return result, gone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 cycles and 1 h compressed, 3 s reconnect grace")
    parser.add_argument("--cycles", type=int, help="viewer connect/disconnect cycles (default 1000)")
    parser.add_argument("--hours", type=float, help="simulated hours of samples (default 24)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--grace", type=float, default=RECONNECT_GRACE_S, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return
    stop_on_sigterm()
    cycles = args.cycles or (50 if args.quick else 1000)
    hours = args.hours or (1.0 if args.quick else 24.0)
    grace = 3.0 if args.quick else RECONNECT_GRACE_S  # quick mode checks that it runs, not the figures
    if cycles < BLOCKS or hours <= 0:
        raise SystemExit(f"--cycles must be at least {BLOCKS} and --hours above 0 (got {cycles}, {hours:g})")
    per_block, per_block_h = cycles // BLOCKS, hours / BLOCKS

    print(f"soak: {cycles} viewer cycles ({CONCURRENCY} at a time, each connected {HOLD_S[0]:g}-{HOLD_S[1]:g} s) "
          f"and {hours:g} h of samples on a fake clock ({FEED_RATE:g} simulated s per s) against one server: "
          f"8 simulated GPUs + host at 1 s, reconnect grace {grace:g} s; {psutil.cpu_count()} CPUs, "
          f"the viewers run on the same machine. Warm-up: the first block of {per_block} cycles and "
          f"{per_block_h:g} h; a reading after each block once every client is gone")
    server = SoakServer(grace)
    viewers = ViewerLoop("soak-viewers")
    peak = Peaks(server)
    readings = [server.reading()]
    results: list[ChurnResult] = []
    gone = 0.0
    began = time.monotonic()
    try:
        peak.start()
        for block in range(BLOCKS):
            count = cycles - per_block * (BLOCKS - 1) if block == BLOCKS - 1 else per_block
            result, gone = phase(server, viewers, count, per_block_h, grace, seed=block)
            results.append(result)
            readings.append(server.reading())
            r = readings[-1]
            print(f"after block {block + 1:2}/{BLOCKS} ({sum(x.cycles for x in results):5} cycles, "
                  f"{per_block_h * (block + 1):5.2f} h): RSS {r['rss']:6.1f} MB, {r['threads']:.0f} threads "
                  f"({r['pool']:.0f} in the worker pool), {r['fds']:.0f} open fds", flush=True)
        stats = server.stats()
    finally:
        peak.done.set()
        viewers.stop()
        server.stop()

    took = time.monotonic() - began
    failures = [f for r in results for f in r.failures]
    start, warm, end = readings[0], readings[1], readings[-1]
    growth = 100 * (end["rss"] - warm["rss"]) / warm["rss"]
    print(f"cycles done: {sum(r.cycles for r in results)} in {took:.0f} s, {len(failures)} failed"
          + (f" (first: {failures[0]})" if failures else "")
          + f"; {sum(r.updates for r in results)} updates received")
    print(f"samples fed: {stats['fed_s'] / 3600:.2f} simulated h of every live series; "
          f"store holds {stats['series']} series")
    for label, r in (("start", start), ("after warm-up", warm), ("end", end)):
        print(f"server at {label:<13}: RSS {r['rss']:6.1f} MB, {r['threads']:.0f} threads "
              f"({r['pool']:.0f} in the worker pool), {r['fds']:.0f} open fds")
    print(f"RSS after warm-up: {warm['rss']:.1f} MB; at end: {end['rss']:.1f} MB; peak {peak.rss:.1f} MB, "
          f"with at most {peak.clients} NiceGUI clients alive at once (connected or within the grace)")
    print(f"RSS growth after warm-up: {growth:+.1f} % (target <= {TARGET_GROWTH_PERCENT:g} %)")
    print(f"threads after warm-up -> end, besides the worker pool: {warm['own']:.0f} -> {end['own']:.0f} "
          f"({end['own'] - warm['own']:+.0f}; pool {warm['pool']:.0f} -> {end['pool']:.0f}, at most 40); "
          f"open fds: {warm['fds']:.0f} -> {end['fds']:.0f} ({end['fds'] - warm['fds']:+.0f}) (target: no growth)")
    print(f"NiceGUI clients after all viewers left: {stats['clients']} "
          f"(back to 0 {gone:.1f} s after the last disconnect; reconnect grace {grace:g} s)")


if __name__ == "__main__":
    main()
