"""The read-only JSON API on a real server on loopback (a `main.py` subprocess)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psutil
import pytest
from support import LabwallServer, wait_for

StartServer = Callable[..., LabwallServer]


@pytest.fixture(scope="module")
def nvml_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One real server with the real NVML backend: on this machine there is no driver."""
    server = LabwallServer(tmp_path_factory.mktemp("api"), {"gpu": {"backend": "nvml"}})
    started = time.monotonic()
    server.start()
    server.started_in = time.monotonic() - started  # type: ignore[attr-defined]
    yield server
    server.stop()


def live_snapshot(server: LabwallServer) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        body = server.get("/api/snapshot").json()
        system = body.get("system")
        return body if system and system.get("net_rx_bytes_per_second") is not None else None

    return wait_for(ready, timeout=5, what="live host values in /api/snapshot")


def test_snapshot_has_live_host_values_within_5_s(nvml_server: LabwallServer) -> None:
    body = live_snapshot(nvml_server)
    assert body["host"] == "test-host"
    assert abs(body["time"] - time.time()) < 5
    system = body["system"]
    assert 0 <= system["cpu_percent"] <= 100
    assert len(system["cpu_per_core_percent"]) == psutil.cpu_count()
    assert system["memory_total_bytes"] == psutil.virtual_memory().total
    assert time.time() - body["system_time"] < 3


def test_snapshot_values_move(nvml_server: LabwallServer) -> None:
    first = live_snapshot(nvml_server)["system_time"]
    wait_for(lambda: nvml_server.get("/api/snapshot").json()["system_time"] > first, timeout=5,
             what="a newer host reading")


def test_no_driver_means_gpu_unavailable_with_reason(nvml_server: LabwallServer) -> None:
    body = wait_for(lambda: (b := nvml_server.get("/api/snapshot").json())["gpu_source"] and b, timeout=5)
    assert body["gpus"] == []
    assert body["simulated"] is False
    assert body["gpu_source"]["state"] == "unavailable"
    assert body["gpu_source"]["reason"] == "no NVIDIA driver found"


def test_healthz_reports_each_collector(nvml_server: LabwallServer) -> None:
    body = wait_for(lambda: (b := nvml_server.get("/healthz").json())["collectors"]["host"]["last_sample"] and b,
                    timeout=5)
    assert body["status"] == "degraded"  # the GPU collector has no driver here
    assert body["reasons"] == ["gpu: unavailable — no NVIDIA driver found"]
    host, gpu = body["collectors"]["host"], body["collectors"]["gpu"]
    assert (host["state"], host["error"]) == ("ok", None)
    assert time.time() - host["last_sample"] < 3
    assert (gpu["state"], gpu["error"], gpu["last_sample"]) == ("unavailable", "no NVIDIA driver found", None)


def test_events_endpoint_reads_by_cursor(nvml_server: LabwallServer) -> None:
    body = nvml_server.get("/api/events").json()
    texts = [e["text"] for e in body["events"]]
    assert any(t.startswith("labwall started on test-host") for t in texts)
    assert nvml_server.get("/api/events", params={"after": body["cursor"]}).json()["events"] == []


def test_simulated_gpus_are_labelled(labwall_server: StartServer) -> None:
    server = labwall_server(config={"gpu": {"simulated_count": 8}}, args=["--demo"])
    body = wait_for(lambda: len((b := server.get("/api/snapshot").json())["gpus"]) == 8 and b, timeout=5)
    assert body["simulated"] is True
    assert body["gpu_source"]["backend"] == "simulated"
    assert [g["index"] for g in body["gpus"]] == list(range(8))
    assert server.get("/healthz").json()["collectors"]["gpu"]["state"] == "ok"


def test_sigterm_stops_the_server_within_5_s(labwall_server: StartServer) -> None:
    server = labwall_server(args=["--demo"])
    wait_for(lambda: server.get("/healthz").json()["collectors"]["gpu"]["last_sample"], timeout=5)
    started = time.monotonic()
    # uvicorn re-raises the captured SIGTERM once shut down, so -15 is a clean exit (systemd agrees).
    assert server.stop(timeout=5) in (0, -15)
    assert time.monotonic() - started < 5
    assert "labwall stopped (collector threads joined)" in server.logs()
