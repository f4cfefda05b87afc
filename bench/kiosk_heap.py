"""Does an open wall keep a flat memory? Chromium's JS heap and DOM size over a long run.

Opens the wall (8 simulated GPUs + host, 1 s tick, charts already full: the store is pre-filled
with a whole chart window) in headless Chromium, and every `--every` seconds forces a garbage
collection and reads the JS heap (CDP Runtime.getHeapUsage), the renderers' private memory, the DOM
counters (CDP Memory.getDOMCounters) and the number of performance-timeline entries. Prints the
samples and the growth from minute 2 to the end.

    .venv/bin/python bench/kiosk_heap.py [--minutes 30] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from wall_bytes import Harness, launch, stop_on_sigterm, wait_live

TARGET_GROWTH = 0.10


def renderer_memory() -> float:
    """Private memory (USS) of the Chromium renderer processes this benchmark started. It holds
    what the JS heap figure does not: Blink's own objects, layout, JIT code, timeline entries."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            if "--type=renderer" in child.cmdline():
                total += child.memory_full_info().uss
        except psutil.Error:
            continue
    return total


def sample(page: object, cdp: object) -> dict[str, float]:
    cdp.send("HeapProfiler.collectGarbage")  # type: ignore[attr-defined]
    heap = cdp.send("Runtime.getHeapUsage")  # type: ignore[attr-defined]
    dom = cdp.send("Memory.getDOMCounters")  # type: ignore[attr-defined]
    entries = page.evaluate("() => performance.getEntries().length")  # type: ignore[attr-defined]
    return {"heap": heap["usedSize"], "nodes": dom["nodes"], "listeners": dom["jsEventListeners"],
            "documents": dom["documents"], "entries": entries, "uss": renderer_memory()}


def growth(first: float, last: float) -> float:
    return (last - first) / first if first else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the run (default 30)")
    parser.add_argument("--from-minute", type=float, default=2.0, help="baseline sample (default minute 2)")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between samples (default 60)")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="tick (flush and collector interval) in seconds; below 1 s it compresses days "
                             "into hours (default 1)")
    parser.add_argument("--quick", action="store_true", help="a 40 s run from second 10, a sample every 10 s")
    args = parser.parse_args()
    stop_on_sigterm()
    if args.quick:
        args.minutes, args.from_minute, args.every = 40 / 60, 10 / 60, 10.0

    from playwright.sync_api import sync_playwright

    print(f"kiosk_heap: one Chromium viewer, 8 simulated GPUs + host, {args.interval:g} s tick, charts full "
          f"(600 points); {args.minutes:g} min, baseline at minute {args.from_minute:g}")
    with Harness(history=600, interval=args.interval) as server, sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        cdp = page.context.new_cdp_session(page)
        page.goto(server.url)
        wait_live(page)
        opened = time.monotonic()
        samples: list[tuple[float, dict[str, float]]] = []
        next_at = args.from_minute * 60
        while True:
            wait = opened + next_at - time.monotonic()
            if wait > 0:
                page.wait_for_timeout(wait * 1000)
            minute = (time.monotonic() - opened) / 60
            found = sample(page, cdp)
            samples.append((minute, found))
            print(f"  minute {minute:5.1f}: JS heap {found['heap'] / 1e6:6.2f} MB, "
                  f"renderer memory {found['uss'] / 1e6:6.1f} MB, "
                  f"DOM nodes {found['nodes']:5.0f}, listeners {found['listeners']:4.0f}, "
                  f"performance entries {found['entries']:5.0f}", flush=True)
            if next_at >= args.minutes * 60:
                break
            next_at = min(args.minutes * 60, next_at + args.every)
        clock = page.text_content(".clock")
        browser.close()
    (m0, s0), (m1, s1) = samples[0], samples[-1]
    peak = max(s["heap"] for _, s in samples)
    ticks = (m1 - m0) * 60 / args.interval
    per_day = (s1["heap"] - s0["heap"]) / ticks * 86400 if ticks else 0.0
    print(f"JS heap change per 1,000 ticks: {(s1['heap'] - s0['heap']) / ticks * 1000 / 1e3:+.1f} kB "
          f"({per_day / 1e6:+.1f} MB a day at a 1 s tick if it went on)")
    print(f"JS heap minute {m0:.1f} -> {m1:.1f}: {s0['heap'] / 1e6:.2f} -> {s1['heap'] / 1e6:.2f} MB, "
          f"growth {100 * growth(s0['heap'], s1['heap']):+.1f} % (peak {peak / 1e6:.2f} MB; target <= "
          f"{100 * TARGET_GROWTH:.0f} %)")
    print(f"renderer private memory (USS) minute {m0:.1f} -> {m1:.1f}: "
          f"{s0['uss'] / 1e6:.1f} -> {s1['uss'] / 1e6:.1f} MB, growth {100 * growth(s0['uss'], s1['uss']):+.1f} %")
    print(f"DOM nodes minute {m0:.1f} -> {m1:.1f}: {s0['nodes']:.0f} -> {s1['nodes']:.0f}, "
          f"growth {100 * growth(s0['nodes'], s1['nodes']):+.1f} %; performance entries "
          f"{s0['entries']:.0f} -> {s1['entries']:.0f}")
    print(f"JS event listeners: {s0['listeners']:.0f} -> {s1['listeners']:.0f}; page still live at {clock}")


if __name__ == "__main__":
    main()
