"""Backend latency of a training-run point: a line appended to a run file -> visible in
/api/runs/{id}/metrics/loss on a real labwall server (a `main.py` subprocess on loopback).

    .venv/bin/python bench/run_latency.py [--appends 200] [--interval 0.2] [--quick] [--no-events]

Prints p50, p95 and max over the appends. The target (issue 5) is p95 <= wall.flush_interval_s
+ 0.3 s from the append to the point in a browser; this measures the backend part (file event ->
read -> registry -> API), the wall's browser-side part is measured separately.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support import LabwallServer, wait_for  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--appends", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between appends")
    parser.add_argument("--quick", action="store_true", help="20 appends (a smoke run)")
    parser.add_argument("--no-events", action="store_true", help="runs.use_events: false (rescan only, NFS-like)")
    args = parser.parse_args()
    appends = 20 if args.quick else args.appends
    with tempfile.TemporaryDirectory(prefix="labwall-latency-") as tmp:
        work = Path(tmp)
        root = work / "runs"
        (root / "latency").mkdir(parents=True)
        path = root / "latency" / "metrics.jsonl"
        path.write_text(json.dumps({"step": 0, "loss": 1.0}) + "\n")
        runs = {"roots": [str(root)], "use_events": not args.no_events}
        server = LabwallServer(work, {"runs": runs, "gpu": {"backend": "simulated"}})
        server.start()
        try:
            client = httpx.Client(base_url=server.url, timeout=5)
            run_id = wait_for(lambda: (r := client.get("/api/runs").json()) and r[0]["id"], timeout=20,
                              what="the run in /api/runs")
            flush = 1.0
            cursor = wait_for(lambda: (b := client.get(f"/api/runs/{run_id}/metrics/loss").json())["points"]
                              and b["cursor"], timeout=10, what="the first point")
            latencies = []
            with path.open("a", buffering=1) as f:
                for step in range(1, appends + 1):
                    f.write(json.dumps({"step": step, "loss": 1.0 / (step + 1)}) + "\n")
                    written = time.perf_counter()
                    while True:
                        body = client.get(f"/api/runs/{run_id}/metrics/loss", params={"after": cursor}).json()
                        if any(p[0] == step for p in body["points"]):
                            latencies.append(time.perf_counter() - written)
                            cursor = body["cursor"]
                            break
                        if time.perf_counter() - written > 30:
                            raise SystemExit(f"step {step} not visible after 30 s")
                        time.sleep(0.005)
                    time.sleep(max(0.0, args.interval - latencies[-1]))
        finally:
            server.stop()
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)]
    mode = "rescan only (use_events: false)" if args.no_events else "file events"
    print(f"run_latency: {len(latencies)} appends, {mode}, polling the API every 5 ms")
    print(f"append -> /api/runs/{{id}}/metrics: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
          f"max {latencies[-1] * 1000:.0f} ms")
    print(f"target (browser, issue 5): p95 <= wall.flush_interval_s + 0.3 s = {flush + 0.3:.1f} s; "
          f"backend share of it: p95 {p95:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
