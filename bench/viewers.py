"""Server cost of many viewers: CPU and RSS of the labwall process, and how late page ticks run,
with 1, 10 and 50 viewers, then 50 viewers plus 2 real Chromium pages.

A lightweight viewer (bench/socket_viewers.py) does what a browser does on the wire and nothing
else, so the figures are the server's own cost. 8 simulated GPUs + host, 1 s tick, charts full.

    .venv/bin/python bench/viewers.py [--quick] [--seconds N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from socket_viewers import Crowd
from wall_bytes import Harness, launch, stop_on_sigterm, wait_live

TARGET_CPU_PERCENT = 25.0


def measure(server: Harness, seconds: float) -> dict[str, Any]:
    server.stats()  # restart the tick counters
    first = server.stats()
    time.sleep(seconds)
    last = server.stats()
    return {
        "cpu": 100 * (last["cpu_s"] - first["cpu_s"]) / (last["time"] - first["time"]),
        "rss": last["rss"],
        "clients": last["clients"],
        "ticks": last["ticks"],
        "frames": last["frames"] - first["frames"],
    }


def report(label: str, m: dict[str, Any]) -> None:
    t = m["ticks"]
    print(f"{label:<24} server CPU {m['cpu']:5.1f} % of one core, RSS {m['rss'] / 1e6:6.1f} MB, "
          f"{t['ticks']} page ticks, longest gap between ticks {t['max_gap_s']:.2f} s, "
          f"{t['late']} later than 2 x interval, worst start delay {t['max_delay_s'] * 1000:.0f} ms; "
          f"{m['frames']} shared frames computed", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 s per step, up to 5 light viewers + 1 browser")
    parser.add_argument("--seconds", type=float, help="measuring time per step (default 30)")
    args = parser.parse_args()
    stop_on_sigterm()
    seconds = args.seconds or (5.0 if args.quick else 30.0)
    steps = (1, 5) if args.quick else (1, 10, 50)
    browsers = 1 if args.quick else 2

    from playwright.sync_api import sync_playwright

    print(f"viewers: 8 simulated GPUs + host, 1 s tick, charts full (600 points), {seconds:g} s per step; "
          f"{psutil.cpu_count()} CPUs here, the viewers run on the same machine")
    with Harness(history=600) as server:
        idle = measure(server, seconds)
        report("0 viewers", idle)
        crowd = Crowd(server.url)
        try:
            results = {}
            for count in steps:
                crowd.grow_to(count)
                time.sleep(3)  # let the new pages draw and fall into step
                results[count] = measure(server, seconds)
                report(f"{count} light viewer{'s' if count > 1 else ''}", results[count])
            with sync_playwright() as p:
                browser = launch(p)
                pages = []
                for _ in range(browsers):
                    page = browser.new_page(viewport={"width": 1920, "height": 1080})
                    page.goto(server.url)
                    wait_live(page)
                    pages.append(page)
                combined = measure(server, seconds)
                report(f"{steps[-1]} light + {browsers} Chromium", combined)
                browser.close()
        finally:
            crowd.close()
    top = results[steps[-1]]
    per_viewer = (top["cpu"] - idle["cpu"]) / steps[-1]
    print(f"server CPU per extra viewer: {per_viewer:.2f} % of one core; RSS per viewer: "
          f"{(top['rss'] - idle['rss']) / steps[-1] / 1e6:.2f} MB")
    print(f"at {steps[-1]} light + {browsers} Chromium: {combined['cpu']:.1f} % of one core "
          f"(target <= {TARGET_CPU_PERCENT:.0f} % at 50), {combined['ticks']['late']} ticks later than 2 x interval "
          f"(target 0)")
    every = [*results.values(), combined]
    print(f"worst tick over all steps: longest gap {max(m['ticks']['max_gap_s'] for m in every):.2f} s "
          f"(target <= 2 x the 1 s interval), worst start delay "
          f"{max(m['ticks']['max_delay_s'] for m in every) * 1000:.0f} ms, "
          f"{sum(m['ticks']['late'] for m in every)} late ticks")


if __name__ == "__main__":
    main()
