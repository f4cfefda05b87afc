"""Where the kiosk browser's time goes: one labwall wall (8 simulated GPUs + host + 10 live run
cards) in one headless Chromium, a CDP trace and a JS CPU profile over a window.

Prints the page's main-thread time by trace event (top-level tasks: script, style, layout, paint,
compositing, GC) and the JS functions with the most self time (Plotly's, NiceGUI's, Vue's).

    .venv/bin/python bench/kiosk_trace.py [--viewport 1920x1080] [--seconds 20] [--throttle 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the test harness's helpers
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from browser_support import launched_browser
from kiosk_cost import GPUS, RUNS, kiosk_lab, viewport, wait_kiosk

SETTLE_S = 3.0
CATEGORIES = "devtools.timeline,disabled-by-default-devtools.timeline,v8.execute,blink,cc,gpu"


def main_thread_summary(events: list[dict[str, Any]], seconds: float) -> None:
    mains = {(e["pid"], e["tid"]) for e in events
             if e.get("name") == "thread_name" and e.get("args", {}).get("name") == "CrRendererMain"}
    top = Counter[str]()
    inner = Counter[str]()
    counts = Counter[str]()
    for e in events:
        if (e.get("pid"), e.get("tid")) not in mains or e.get("ph") != "X":
            continue
        ms = e.get("dur", 0) / 1000
        counts[e["name"]] += 1
        if e["name"] in ("RunTask", "ThreadControllerImpl::RunTask"):
            top[e["name"]] += ms
        else:
            inner[e["name"]] += ms
    print(f"renderer main thread, per second of wall time ({seconds:g} s traced):")
    for name, ms in top.most_common(3):
        print(f"  task {name:<40} {ms / seconds:8.1f} ms/s")
    for name, ms in inner.most_common(25):
        print(f"  {name:<45} {ms / seconds:8.1f} ms/s (inclusive), {counts[name] / seconds:6.1f}/s")


def profile_summary(profile: dict[str, Any], seconds: float) -> None:
    nodes = {n["id"]: n for n in profile["nodes"]}
    self_us: defaultdict[str, float] = defaultdict(float)
    by_file: defaultdict[str, float] = defaultdict(float)
    for node_id, delta in zip(profile["samples"], profile["timeDeltas"], strict=True):
        frame = nodes[node_id]["callFrame"]
        url = frame["url"].rsplit("/", 1)[-1] or "(native)"
        self_us[f"{frame['functionName'] or '(anon)'} {url}:{frame['lineNumber']}"] += delta
        by_file[url] += delta
    parent = {c: n["id"] for n in profile["nodes"] for c in n.get("children", [])}
    inclusive: defaultdict[str, float] = defaultdict(float)
    for node_id, delta in zip(profile["samples"], profile["timeDeltas"], strict=True):
        seen = set()
        while node_id is not None:
            frame = nodes[node_id]["callFrame"]
            name = f"{frame['functionName'] or '(anon)'} {frame['url'].rsplit('/', 1)[-1]}:{frame['lineNumber']}"
            if name not in seen and frame["functionName"] not in ("(root)", "(idle)", "(program)"):
                seen.add(name)
                inclusive[name] += delta
            node_id = parent.get(node_id)
    print("JS inclusive time by function, ms/s:")
    for fn, us in sorted(inclusive.items(), key=lambda kv: -kv[1])[:30]:
        print(f"  {fn:<70} {us / 1000 / seconds:8.2f}")
    print("JS self time by file, ms/s:")
    for url, us in sorted(by_file.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {url:<60} {us / 1000 / seconds:8.1f}")
    print("JS self time by function, ms/s:")
    for fn, us in sorted(self_us.items(), key=lambda kv: -kv[1])[:30]:
        print(f"  {fn:<70} {us / 1000 / seconds:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewport", type=viewport, default=viewport("1920x1080"))
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--throttle", type=float, default=1.0, help="CDP Emulation.setCPUThrottlingRate")
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--warmup", type=float, default=0.0, help="seconds labwall runs before the page opens")
    args = parser.parse_args()
    with kiosk_lab(runs=args.runs) as server, launched_browser() as browser:
        time.sleep(args.warmup)
        page = browser.new_context(viewport=args.viewport).new_page()
        cdp = page.context.new_cdp_session(page)
        page.goto(server.url + "/")
        wait_kiosk(page, args.runs)
        if args.throttle != 1:
            cdp.send("Emulation.setCPUThrottlingRate", {"rate": args.throttle})
        page.wait_for_timeout(SETTLE_S * 1000)
        events: list[dict[str, Any]] = []
        done: list[bool] = []
        cdp.on("Tracing.dataCollected", lambda e: events.extend(e["value"]))
        cdp.on("Tracing.tracingComplete", lambda e: done.append(True))
        widths = page.evaluate("() => [...document.querySelectorAll('.wall .js-plotly-plot')].map(e => e.clientWidth)")
        stats0 = page.evaluate("() => ({...window.labwallCharts?.stats})")
        cdp.send("Profiler.enable")
        cdp.send("Profiler.setSamplingInterval", {"interval": 200})
        cdp.send("Tracing.start", {"categories": CATEGORIES, "transferMode": "ReportEvents"})
        cdp.send("Profiler.start")
        page.wait_for_timeout(args.seconds * 1000)
        profile = cdp.send("Profiler.stop")["profile"]
        stats1 = page.evaluate("() => ({...window.labwallCharts?.stats})")
        cdp.send("Tracing.end")
        while not done:
            page.wait_for_timeout(100)
        print(f"kiosk_trace: {args.viewport['width']}x{args.viewport['height']}, throttle {args.throttle:g}x, "
              f"{GPUS} simulated GPUs + host + {args.runs} run cards")
        print(f"chart widths, CSS px: {widths}")
        if stats1:
            ticks, redraws = (stats1[k] - stats0.get(k, 0) for k in ("ticks", "redraws"))
            print(f"chart redraws: {redraws} in {ticks} ticks ({redraws / max(1, ticks):.1f} a tick, "
                  f"{len(widths)} charts)")
        main_thread_summary(events, args.seconds)
        profile_summary(profile, args.seconds)


if __name__ == "__main__":
    main()
