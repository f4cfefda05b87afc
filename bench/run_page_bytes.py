"""Bytes of a live run page (`/run/{id}`) for one viewer, measured in a real Chromium.

A run with 20 metrics x 10,000 points (JSON Lines) is written before a labwall server starts; a
writer then appends one line (all 20 metrics) per second. The page is opened in headless Chromium;
the first load is the HTML answer (NiceGUI puts the initial figures in it) plus every websocket
frame until the charts have drawn; then every frame is counted (CDP Network.webSocketFrameReceived)
over a number of ticks.

    .venv/bin/python bench/run_page_bytes.py [--seconds N] [--metrics 20] [--points 10000]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support import LabwallServer, wait_for  # noqa: E402
from wall_bytes import launch  # noqa: E402  (bench/ is on sys.path when run as a script)


def record(step: int, metrics: int) -> str:
    values = {f"{'eval' if m % 4 == 3 else 'train'}/metric_{m:02d}": round(2 / math.sqrt(step) + 0.01 * m, 6)
              for m in range(metrics)}
    return json.dumps({"step": step, **values}) + "\n"


def appender(path: Path, start: int, metrics: int, stop: threading.Event) -> None:
    step = start
    while not stop.wait(1.0):
        with path.open("a") as f:
            f.write(record(step, metrics))
        step += 1


def measure(seconds: float, metrics: int, points: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as work:
        root = Path(work) / "runs" / "bench-run"
        root.mkdir(parents=True)
        log = root / "metrics.jsonl"
        log.write_text("".join(record(s, metrics) for s in range(1, points + 1)))
        server = LabwallServer(Path(work), {"runs": {"roots": [str(root.parent)]}, "gpu": {"simulated_count": 2}},
                               ["--demo"]).start()
        stop = threading.Event()
        try:
            run = wait_for(lambda: next((r for r in server.get("/api/runs").json() if r["name"] == "bench-run"
                                         and len(r["metrics"]) == metrics and r["step"] == points), None), 60,
                           what="the bench run read whole")
            threading.Thread(target=appender, args=(log, points + 1, metrics, stop), daemon=True).start()
            with sync_playwright() as p:
                browser = launch(p)
                page = browser.new_page(viewport={"width": 1920, "height": 1080})
                cdp = page.context.new_cdp_session(page)
                cdp.send("Network.enable")
                frames: list[str] = []
                cdp.on("Network.webSocketFrameReceived", lambda e: frames.append(e["response"]["payloadData"]))
                started = time.monotonic()
                response = page.goto(f"{server.url}/run/{run['id']}")
                html = len(response.body()) if response else 0
                page.wait_for_function("() => { const p = [...document.querySelectorAll('.lw-run .js-plotly-plot')];"
                                       f" return p.length === {metrics} && p.every(e => e._fullLayout); }}",
                                       timeout=60_000)
                load_s = time.monotonic() - started
                first_frames = sum(len(f.encode()) for f in frames)
                drawn = page.evaluate("() => Math.max(...[...document.querySelectorAll('.lw-run .js-plotly-plot')]"
                                      ".map(e => e.data[0].x.length))")
                page.wait_for_timeout(3000)  # the page starts streaming once its charts have drawn
                frames.clear()
                page.wait_for_timeout(seconds * 1000)
                got = list(frames)
                browser.close()
        finally:
            stop.set()
            server.stop()
    size = lambda f: len(f.encode())  # noqa: E731
    ticks = sum(1 for f in got if f.startswith('42["update"'))
    total = sum(size(f) for f in got if not f.startswith(("2", "3")))  # engine.io pings
    extends = sum(size(f) for f in got if "extendTraces" in f)
    return {"html": html, "first_frames": first_frames, "load_s": load_s, "drawn": drawn, "ticks": ticks,
            "per_tick": total / max(1, ticks), "extends": extends / max(1, ticks)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--points", type=int, default=10_000)
    args = parser.parse_args()
    r = measure(args.seconds, args.metrics, args.points)
    print(f"run_page_bytes: /run/{{id}} with {args.metrics} metrics x {args.points} points, one Chromium viewer, "
          f"1 line/s appended, 1 s tick")
    print(f"first load: {(r['html'] + r['first_frames']) / 1024:.0f} KiB (HTML {r['html'] / 1024:.0f} KiB + "
          f"websocket {r['first_frames'] / 1024:.0f} KiB), charts drawn after {r['load_s']:.1f} s, "
          f"at most {r['drawn']:.0f} raw points per chart")
    print(f"live: {r['per_tick']:.0f} B/tick over {r['ticks']} ticks (extendTraces {r['extends']:.0f} B/tick)")


if __name__ == "__main__":
    main()
