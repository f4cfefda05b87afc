"""The multi-host wall at lab scale: 32 simulated GPU servers x 8 GPUs behind a real Prometheus,
ONE labwall wall server with the `prometheus` source, one headless Chromium showing it at 1080p.

The 32 servers are one small exporter process (bench/fake_lab_exporter.py, 32 ports, labwall's
metric names), scraped every second by Debian's prometheus (tests/prometheus_support.py). The wall
server is the wall_bytes harness's server (8 simulated local GPUs, charts full, /bench/stats) with
`prometheus.url` set. Prints the wall server's CPU (% of one core), RSS, tick punctuality (as
bench/viewers.py measures it) and how many queries it sent Prometheus per refresh (Prometheus's
own request counters).

    .venv/bin/python bench/multihost.py [--quick] [--seconds N] [--hosts N] [--screenshot PNG]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the Prometheus harness

from viewers import measure
from wall_bytes import Harness, launch, stop_on_sigterm, wait_live

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

TARGET_CPU_PERCENT = 25.0
HISTORY = 600  # local charts full, as in the other wall benchmarks
QUERY_HANDLERS = ("/api/v1/query", "/api/v1/query_range")


# -- the wall server (subprocess) ---------------------------------------------------------------------
def serve(args: argparse.Namespace) -> None:
    """wall_bytes' bench server plus the prometheus source: the same routes and /bench/stats."""
    from wall_bytes import serve as serve_wall

    from monitor.config import PrometheusConfig

    def add_source(config: Any) -> None:
        config.prometheus = PrometheusConfig(url=args.prometheus, interval_s=args.refresh)

    serve_wall(argparse.Namespace(port=args.port, history=HISTORY, gpus=8, interval=1.0), add_source)


class WallServer(Harness):
    """This file's `--serve` on a free loopback port (Harness's stats() and stop())."""

    def __init__(self, prometheus_url: str, refresh_s: float) -> None:  # starts its own command, not Harness's
        self.spawn(__file__, ["--prometheus", prometheus_url, "--refresh", str(refresh_s)], "multihost")


# -- the lab: exporter + Prometheus ---------------------------------------------------------------------
def wait_until(condition: Any, timeout: float, what: str, proc: subprocess.Popen[Any] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{what}: the process exited with {proc.returncode}")
        try:
            result = condition()
            if result:
                return result
        except (httpx.HTTPError, ValueError, KeyError):
            pass  # not up yet
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.25)


def start_exporter(hosts: int) -> tuple[subprocess.Popen[str], list[int]]:
    proc = subprocess.Popen([sys.executable, str(BENCH / "fake_lab_exporter.py"), "--hosts", str(hosts), "--gpus", "8"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line or line[0] != "ready":
        raise SystemExit(f"fake_lab_exporter did not start: {line}")
    return proc, [int(p) for p in line[1:]]


def query_requests(prometheus_url: str) -> dict[str, float]:
    """Prometheus's own count of the API requests it answered, per handler."""
    text = httpx.get(prometheus_url + "/metrics", timeout=10).text
    counts = dict.fromkeys(QUERY_HANDLERS, 0.0)
    for family in text_string_to_metric_families(text):
        if family.name == "prometheus_http_requests":
            for sample in family.samples:
                handler = sample.labels.get("handler")
                if sample.name.endswith("_total") and handler in counts:
                    counts[handler] += sample.value
    return counts


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


# -- the benchmark ---------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright
    from prometheus_support import PrometheusServer

    seconds = args.seconds or (10.0 if args.quick else 60.0)
    print(f"multihost: {args.hosts} simulated hosts x 8 GPUs (one exporter process), a real Prometheus "
          f"scraping them every {args.scrape:g} s, one wall server (prometheus source, refresh every "
          f"{args.refresh:g} s, 8 local simulated GPUs) and 1 headless Chromium at 1920x1080; {seconds:g} s "
          f"measured; {psutil.cpu_count()} CPUs here, everything on this machine", flush=True)
    exporter, ports = start_exporter(args.hosts)
    workdir = Path(tempfile.mkdtemp(prefix="labwall-multihost-"))
    prometheus = PrometheusServer(workdir, [f"127.0.0.1:{p}" for p in ports], args.scrape)
    try:
        prometheus.start()
        wait_until(lambda: prometheus.values("count(up == 1)", by="") == {"": float(args.hosts)}, 60,
                   f"Prometheus to scrape all {args.hosts} hosts")
        with WallServer(prometheus.url, args.refresh) as wall, sync_playwright() as p:
            wait_until(lambda: len(httpx.get(wall.url + "/api/snapshot", timeout=10).json()["hosts"]) == args.hosts,
                       60, f"the wall to know all {args.hosts} hosts")
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.goto(wall.url)
            wait_live(page, timeout_s=60)
            time.sleep(2)  # let the page fall into step
            if args.screenshot:
                page.screenshot(path=args.screenshot)
                print(f"screenshot: {args.screenshot}")
            prom_process, exporter_process = psutil.Process(prometheus.proc.pid), psutil.Process(exporter.pid)
            before = query_requests(prometheus.url)
            prom_cpu, exporter_cpu = cpu_seconds(prom_process), cpu_seconds(exporter_process)
            started = time.monotonic()
            figures = measure(wall, seconds)
            elapsed = time.monotonic() - started
            after = query_requests(prometheus.url)
            prom_cpu = 100 * (cpu_seconds(prom_process) - prom_cpu) / elapsed
            exporter_cpu = 100 * (cpu_seconds(exporter_process) - exporter_cpu) / elapsed
            browser.close()
    finally:
        prometheus.stop()
        exporter.terminate()
        exporter.wait(10)
    report(args, figures, before, after, elapsed, prom_cpu, exporter_cpu)


def report(args: argparse.Namespace, figures: dict[str, Any], before: dict[str, float], after: dict[str, float],
           elapsed: float, prom_cpu: float, exporter_cpu: float) -> None:
    ticks = figures["ticks"]
    refreshes = elapsed / args.refresh
    instant, ranged = (after[h] - before[h] for h in QUERY_HANDLERS)
    verdict = "ok" if figures["cpu"] < TARGET_CPU_PERCENT else "OVER TARGET"
    print(f"wall server CPU: {figures['cpu']:.1f} % of one core over {elapsed:.0f} s "
          f"(target < {TARGET_CPU_PERCENT:.0f} %: {verdict}), {figures['clients']} page(s) open")
    print(f"wall server RSS: {figures['rss'] / 1e6:.1f} MB")
    print(f"ticks: {ticks['ticks']} page ticks, longest gap between ticks {ticks['max_gap_s']:.2f} s, "
          f"{ticks['late']} later than 2 x interval, worst tick delay {ticks['max_delay_s'] * 1000:.0f} ms")
    print(f"Prometheus queries per refresh: {(instant + ranged) / refreshes:.1f} "
          f"({instant:.0f} instant + {ranged:.0f} range queries in ~{refreshes:.0f} refreshes of {args.refresh:g} s)")
    print(f"for scale: Prometheus {prom_cpu:.1f} % of one core, fake exporter ({args.hosts} hosts) "
          f"{exporter_cpu:.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 s measured instead of 60 s")
    parser.add_argument("--seconds", type=float, help="measuring time (default 60, --quick 10)")
    parser.add_argument("--hosts", type=int, default=32, help="simulated GPU servers (8 GPUs each)")
    parser.add_argument("--scrape", type=float, default=1.0, help="Prometheus scrape interval, s")
    parser.add_argument("--refresh", type=float, default=2.0, help="the wall's prometheus.interval_s")
    parser.add_argument("--screenshot", help="save a PNG of the wall once it is live")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--prometheus", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return
    stop_on_sigterm()
    run(args)


if __name__ == "__main__":
    main()
