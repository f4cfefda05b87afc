"""A whole lab in one small process: N simulated GPU servers, each on its own loopback port, each
serving /metrics in labwall's metric names (monitor/model/metric_names.py) with its own `host` label.

For benchmarks of the multi-host wall (bench/multihost.py): 32 real labwall instances would cost
more CPU than the wall being measured. Values move with time (GPU load waves, growing run steps),
so the wall has something new to draw on every refresh.

    .venv/bin/python bench/fake_lab_exporter.py --hosts 32 --gpus 8
    -> prints "ready PORT PORT ..." once every port serves; stops on SIGTERM or when stdin closes
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.model import metric_names as m
from monitor.web.metrics import Families

GiB = 1024**3
GPU_MEMORY = 80 * GiB
HOST_MEMORY = 512 * GiB
RUNS_PER_HOST = 2
STARTED = time.time()


class FakeHost(Collector):
    """One simulated GPU server: what its labwall's /metrics would say at this moment."""

    def __init__(self, index: int, gpus: int) -> None:
        self.index = index
        self.host = f"gpu-server-{index + 1:02d}"
        self.gpus = gpus

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        families = Families(self.host)
        families.add(m.INFO, 1, "fake")
        busy_gpus = 0
        for gpu in range(self.gpus):
            ids = (gpu, f"GPU-fake-{self.index:02d}-{gpu}")
            # Every fourth GPU idles; the others follow a slow wave, each with its own phase.
            busy = (self.index + gpu) % 4 != 0
            util = 0.55 + 0.4 * math.sin(now / 20 + self.index + gpu / 3) if busy else 0.0
            busy_gpus += busy
            families.add(m.GPU_INFO, 1, *ids, "NVIDIA H100 80GB HBM3 (fake)")
            families.add(m.GPU_UP, 1, *ids)
            families.add(m.GPU_UTILIZATION, round(util, 3), *ids)
            families.add(m.GPU_MEMORY_USED, (0.8 if busy else 0.01) * GPU_MEMORY, *ids)
            families.add(m.GPU_MEMORY_TOTAL, GPU_MEMORY, *ids)
            families.add(m.GPU_TEMPERATURE, round(32 + 45 * util), *ids)
            families.add(m.GPU_POWER, round(70 + 600 * util, 1), *ids)
            families.add(m.GPU_POWER_LIMIT, 700, *ids)
            if busy:
                run = self.run_id(gpu % RUNS_PER_HOST)
                families.add(m.GPU_PROCESS_MEMORY, 0.79 * GPU_MEMORY, *ids, 10_000 + gpu, "alice", run)
        families.add(m.HOST_CPU, round(0.1 + 0.05 * busy_gpus, 3))
        families.add(m.HOST_MEMORY_USED, 0.3 * HOST_MEMORY)
        families.add(m.HOST_MEMORY_TOTAL, HOST_MEMORY)
        families.add(m.HOST_LOAD1, round(1.0 + busy_gpus, 2))
        families.add(m.HOST_DISK_USED, 0.42, "/data/runs")
        for r in range(RUNS_PER_HOST):
            run, step = self.run_id(r), int((now - STARTED) * 2) + 1000 * r
            families.add(m.RUN_INFO, 1, run, f"{self.host}/llama-ft-{r}", "/data/runs")
            families.add(m.RUN_STEP, step, run)
            families.add(m.RUN_STATUS, 1, run, "running")
            families.add(m.RUN_METRIC, round(3.0 / math.sqrt(1 + step / 100), 5), run, "loss")
            families.add(m.RUN_LAST_UPDATE, now, run)
            families.add(m.RUN_BAD_LINES, 0, run)
        for collector in ("gpu", "host", "runs"):
            families.add(m.COLLECTOR_UP, 1, collector)
            families.add(m.COLLECTOR_LAST_SUCCESS, now, collector)
        return iter(families)

    def run_id(self, r: int) -> str:
        return f"llama-ft-{r}-{self.index:02d}{r:08d}"


def serve_lab(hosts: int, gpus: int) -> list[int]:
    """Start one /metrics server per host (daemon threads); returns their ports."""
    ports = []
    for index in range(hosts):
        registry = CollectorRegistry(auto_describe=False)
        registry.register(FakeHost(index, gpus))
        server, _thread = start_http_server(0, addr="127.0.0.1", registry=registry)
        ports.append(int(server.server_address[1]))
    return ports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=32)
    parser.add_argument("--gpus", type=int, default=8)
    args = parser.parse_args()
    if not 1 <= args.hosts <= 1000 or not 1 <= args.gpus <= 64:
        parser.error("--hosts must be 1..1000 and --gpus 1..64")
    ports = serve_lab(args.hosts, args.gpus)
    print("ready " + " ".join(map(str, ports)), flush=True)
    sys.stdin.read()  # the benchmark holds our stdin: when it exits (however it exits) we do too


if __name__ == "__main__":
    main()
