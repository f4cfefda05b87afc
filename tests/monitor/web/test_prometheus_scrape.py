"""A real Prometheus scraping three real labwall servers (simulated GPUs, three host labels)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_support import PrometheusServer
from support import LabwallServer, wait_for

# Host label -> simulated GPU count: each host has a different number of GPUs, so none can pass for another.
HOSTS = {"lab-a": 1, "lab-b": 2, "lab-c": 3}
SCRAPE_INTERVAL_S = 1.0


class Lab:
    def __init__(self, servers: dict[str, LabwallServer], prometheus: PrometheusServer) -> None:
        self.servers = servers
        self.prometheus = prometheus


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    workdir: Path = tmp_path_factory.mktemp("prometheus")
    servers = {}
    for host, count in HOSTS.items():
        # Readings every 10 minutes: each server's first reading stays its current one, so what
        # Prometheus scraped and what /api/snapshot says are the same reading.
        config = {"host_label": host, "gpu": {"backend": "simulated", "simulated_count": count, "interval_s": 600},
                  "host": {"interval_s": 600}}
        servers[host] = LabwallServer(workdir, config)
    prometheus = PrometheusServer(workdir, [f"127.0.0.1:{s.port}" for s in servers.values()], SCRAPE_INTERVAL_S)
    try:
        for server in servers.values():
            server.start(wait=False)  # the three start side by side
        prometheus.start()
        for server in servers.values():
            server.wait_ready(timeout=60)
        yield Lab(servers, prometheus)
    finally:
        prometheus.stop()
        for server in servers.values():
            server.stop()


def gpu_values(prometheus: PrometheusServer, metric: str, host: str) -> dict[str, float]:
    return prometheus.values(f'{metric}{{host="{host}"}}', by="gpu")


def test_every_host_s_gpu_series_arrive_with_their_values(lab: Lab) -> None:
    prometheus = lab.prometheus
    wait_for(lambda: prometheus.values("count by (host) (labwall_gpu_up == 1)", by="host")
             == {host: float(n) for host, n in HOSTS.items()}, timeout=30, interval=0.25,
             what="every host's GPUs in Prometheus")
    for host, server in lab.servers.items():
        snapshot = server.get("/api/snapshot").json()
        assert snapshot["host"] == host
        gpus = {str(g["index"]): g for g in snapshot["gpus"]}
        assert len(gpus) == HOSTS[host]
        utilization = gpu_values(prometheus, "labwall_gpu_utilization_ratio", host)
        memory = gpu_values(prometheus, "labwall_gpu_memory_used_bytes", host)
        temperature = gpu_values(prometheus, "labwall_gpu_temperature_celsius", host)
        power = gpu_values(prometheus, "labwall_gpu_power_watts", host)
        assert utilization.keys() == memory.keys() == temperature.keys() == power.keys() == gpus.keys()
        for index, gpu in gpus.items():
            assert utilization[index] == pytest.approx(gpu["utilization_gpu_percent"] / 100, abs=1e-9)
            assert memory[index] == pytest.approx(gpu["memory_used_bytes"], rel=1e-12)
            assert temperature[index] == pytest.approx(gpu["temperature_celsius"], abs=1e-9)
            assert power[index] == pytest.approx(gpu["power_draw_watts"], rel=1e-9)
        memory_total = prometheus.values(f'labwall_host_memory_total_bytes{{host="{host}"}}', by="instance")
        # honor_labels: labwall's own `host` label is kept next to Prometheus' instance label.
        assert memory_total == {f"127.0.0.1:{server.port}": snapshot["system"]["memory_total_bytes"]}


def test_a_stopped_instance_is_down_within_two_scrape_intervals(lab: Lab) -> None:
    prometheus = lab.prometheus
    instances = {host: f"127.0.0.1:{s.port}" for host, s in lab.servers.items()}
    wait_for(lambda: prometheus.values('up{job="labwall"}', by="instance") == {i: 1.0 for i in instances.values()},
             timeout=30, interval=0.25, what="every instance up")
    all_up_at = time.time()
    signalled_at = time.time()
    lab.servers["lab-c"].stop()
    stopped_at = time.time()  # the process has exited
    victim = instances["lab-c"]
    wait_for(lambda: prometheus.values(f'up{{instance="{victim}"}}', by="instance") == {victim: 0.0},
             timeout=30, interval=0.25, what="up == 0 for the stopped instance")
    # Prometheus's own sample times, so a slow poll here cannot blur the measurement.
    samples = [(float(t), v) for t, v in prometheus.query(f'up{{instance="{victim}"}}[60s]')[0]["values"]
               if float(t) >= all_up_at]
    first_down = min(t for t, v in samples if v == "0")
    assert first_down - stopped_at <= 2 * SCRAPE_INTERVAL_S, samples
    assert all(v == "1" for t, v in samples if t < signalled_at)
    others = prometheus.values('up{job="labwall"}', by="instance")
    assert others == {instances["lab-a"]: 1.0, instances["lab-b"]: 1.0, victim: 0.0}
