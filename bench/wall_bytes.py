"""Websocket bytes per tick for one viewer of the wall, measured in a real Chromium.

Runs the wall twice, with a 60-point and a 3,600-point history already in every chart (the store
is pre-filled before the server starts), opens it in headless Chromium and counts the payload of
every websocket frame the page receives (CDP Network.webSocketFrameReceived) over a number of
ticks. Prints bytes per tick for 8 simulated GPUs + host, its split into element updates and
the charts' points (one `labwallCharts.push` a tick), and the ratio between the two histories.

    .venv/bin/python bench/wall_bytes.py [--quick] [--seconds N]

Also the harness the other wall benchmarks use (`--serve`): a labwall server with a pre-filled
store and a /bench/stats route (server CPU, RSS, tick punctuality).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_RATIO = 1.10
TARGET_BYTES = 4096
CHROMIUM_ARGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-dev-shm-usage"]


# -- the server harness -------------------------------------------------------------------------------
def bench_config(port: int, history: int, gpus: int, interval: float) -> Any:
    from monitor.config import parse_config

    window = max(60, history)
    return parse_config({
        "host_label": "bench-host",
        "server": {"bind": "127.0.0.1", "port": port},
        "history": {"window_s": window * interval},
        "gpu": {"backend": "simulated", "simulated_count": gpus, "interval_s": interval},
        "host": {"interval_s": interval},
        "wall": {"flush_interval_s": interval, "chart_window_s": window * interval},
    })


def prefill(store: Any, config: Any, points: int) -> int:
    """`points` - 1 past readings of every series the collectors produce, ending one interval ago,
    so that the charts of a page opened now hold `points` points once the first live reading lands."""
    from monitor.app import build_collectors
    from monitor.model.samples import Sample
    from monitor.model.store import Store

    scratch = Store(config.host_label, config.history.window_s, day_tier=False)
    collectors = build_collectors(config, scratch)
    now = time.time()
    for c in collectors:
        c.setup()
        c.collect(now)
        c.close()
    series = scratch.keys()  # every (name, labels) the collectors produce
    latest = {key: scratch.latest(key) for key in series}
    interval = config.gpu.interval_s
    count = 0
    for i in range(points - 1, 0, -1):
        t = now - i * interval
        batch = []
        for key, found in latest.items():
            if found is None:
                continue
            value = found[1]
            if key[0] in ("gpu_utilization_percent", "host_cpu_percent"):
                value = min(100.0, max(0.0, value + 6 * math.sin(t / 23 + hash(key) % 7)))
            batch.append(Sample(key[0], key[1], t, value))
        store.append(batch, interval)
        count += len(batch)
    return count


def serve(args: argparse.Namespace, adjust: Callable[[Any], None] | None = None) -> None:
    """The bench server: the wall and the API over a prefilled store, plus /bench/stats; `adjust`
    changes the config first (bench/multihost.py adds its prometheus source)."""
    import psutil
    from nicegui import app, ui
    from nicegui.client import Client

    from monitor.app import Monitor
    from monitor.model.store import Store
    from monitor.wall import register_wall
    from monitor.web.api import register_api

    config = bench_config(args.port, args.history, args.gpus, args.interval)
    if adjust is not None:
        adjust(config)
    store = Store(config.host_label, config.history.window_s, config.history.day_tier, config.events.capacity)
    if args.history:
        prefill(store, config, args.history)
    monitor = Monitor(config, store=store)
    register_api(app, store)
    feed = register_wall(monitor)
    process = psutil.Process()

    @app.get("/bench/stats")
    def stats() -> dict[str, Any]:
        cpu = process.cpu_times()
        return {"cpu_s": cpu.user + cpu.system, "rss": process.memory_info().rss,
                "time": time.monotonic(), "clients": len(Client.instances), "ticks": feed.tick_stats.take(),
                "frames": feed.frames_made}

    app.on_startup(monitor.start)
    app.on_shutdown(lambda: monitor.stop(timeout_s=2.0))
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    # the same settings as monitor/web/server.py (no Tailwind runtime); LABWALL_BENCH_TAILWIND=1 measures
    # the page with NiceGUI's Tailwind browser runtime, NiceGUI's default
    tailwind = os.environ.get("LABWALL_BENCH_TAILWIND", "0") == "1"
    ui.run(host="127.0.0.1", port=args.port, title="labwall", dark=True, reload=False, show=False,
           uvicorn_logging_level="warning", reconnect_timeout=10.0, tailwind=tailwind)


def _exit_with_parent(parent: int) -> None:
    """A harness outlives no benchmark: stop when the process that started it is gone."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def stop_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so that `with Harness(...)` blocks stop their servers."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Harness:
    """A `--serve` subprocess on a free loopback port."""

    def __init__(self, history: int, gpus: int = 8, interval: float = 1.0) -> None:
        self.spawn(__file__, ["--history", str(history), "--gpus", str(gpus), "--interval", str(interval)], "bench")

    def spawn(self, script: str, args: list[str], tag: str) -> None:
        """Start `script --serve --port P ARGS` and return once its /healthz answers (90 s at most);
        the bench servers of other scripts (soak, multihost) start their own `--serve` this way."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"labwall-{tag}-{self.port}.log"
        self.proc = subprocess.Popen(
            [sys.executable, script, "--serve", "--port", str(self.port), *args],
            cwd=ROOT, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
            # NiceGUI switches to its own test mode when it sees this (set when run from pytest)
            env={k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"},
        )
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bench server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"bench server did not start within 90 s (log: {self.log})")
            time.sleep(0.2)

    def stats(self) -> dict[str, Any]:
        return httpx.get(self.url + "/bench/stats", timeout=10).json()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the browser ----------------------------------------------------------------------------------------
def chromium_path() -> str:
    found = os.environ.get("LABWALL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise SystemExit("chromium not found (apt-get install chromium)")
    return found


def launch(playwright: Any) -> Any:
    args = [*CHROMIUM_ARGS, *(["--no-sandbox"] if os.geteuid() == 0 else [])]
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=args)


def wait_live(page: Any, timeout_s: float = 30.0) -> None:
    page.wait_for_function("() => document.querySelectorAll('.wall .js-plotly-plot').length > 0 && "
                           "[...document.querySelectorAll('.wall .js-plotly-plot')].every(e => e._fullLayout)",
                           timeout=timeout_s * 1000)
    for _ in range(2):
        clock = page.text_content(".clock")
        page.wait_for_function("(t) => document.querySelector('.clock').textContent !== t", arg=clock,
                               timeout=timeout_s * 1000)


def measure(history: int, seconds: float) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with Harness(history) as server, sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        frames: list[str] = []
        cdp.on("Network.webSocketFrameReceived", lambda e: frames.append(e["response"]["payloadData"]))
        response = page.goto(server.url)
        first_page = len(response.body()) if response else 0
        wait_live(page)
        frames.clear()
        page.wait_for_timeout(seconds * 1000)
        got = list(frames)
        points = page.evaluate("() => [...document.querySelectorAll('.wall .js-plotly-plot')]"
                               ".map(e => e.data[0].x.length)")
        browser.close()
    size = lambda f: len(f.encode())  # noqa: E731
    ticks = sum(1 for f in got if f.startswith('42["update"'))
    updates = sum(size(f) for f in got if f.startswith('42["update"'))
    extends = sum(size(f) for f in got if "labwallCharts.push" in f or "extendTraces" in f)  # one message a tick
    total = sum(size(f) for f in got if not f.startswith(("2", "3")))  # engine.io pings are not the wall's
    return {"history": history, "ticks": ticks, "total": total, "per_tick": total / max(1, ticks),
            "updates": updates / max(1, ticks), "extends": extends / max(1, ticks),
            "charts": len(points), "points": min(points) if points else 0, "first_page": first_page}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 s per history instead of 60 s")
    parser.add_argument("--seconds", type=float, help="measuring time per history")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--history", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--gpus", type=int, default=8, help=argparse.SUPPRESS)
    parser.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return
    stop_on_sigterm()
    seconds = args.seconds or (5.0 if args.quick else 60.0)
    print(f"wall_bytes: one Chromium viewer, 8 simulated GPUs + host, 1 s tick, {seconds:g} s per history")
    results = [measure(history, seconds) for history in (60, 3600)]
    for r in results:
        print(f"history {r['history']:>5} points: {r['per_tick']:7.0f} B/tick over {r['ticks']} ticks "
              f"(element updates {r['updates']:.0f} B + chart points {r['extends']:.0f} B for {r['charts']} charts); "
              f"traces hold {r['points']} points; first page {r['first_page'] / 1024:.0f} KiB")
    ratio = results[1]["per_tick"] / results[0]["per_tick"]
    print(f"ratio bytes/tick 3600 vs 60 points: {ratio:.3f} (target <= {TARGET_RATIO})")
    print(f"bytes/tick, 8 GPUs + host: {results[1]['per_tick']:.0f} B (target <= {TARGET_BYTES} B)")


if __name__ == "__main__":
    main()
