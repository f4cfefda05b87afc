"""GET /api/usage and the per-user counters of /metrics on a real server (`main.py` subprocess)
with simulated GPUs from tests/data/usage_scenario.json: alice and bob share GPU 0 by memory 3:1,
carol holds GPU 1 at 0 % utilisation. The numbers appear once the first minute has closed."""

from __future__ import annotations

import time
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import ROOT, LabwallServer, wait_for

SCENARIO = ROOT / "tests" / "data" / "usage_scenario.json"


@pytest.fixture(scope="module")
def usage_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    config = {"gpu": {"backend": "simulated", "simulated_scenario": str(SCENARIO)}, "host": {"enabled": False}}
    server = LabwallServer(tmp_path_factory.mktemp("usage"), config).start()
    yield server
    server.stop()


def counters(server: LabwallServer) -> dict[tuple[str, str], float]:
    found = {}
    for family in text_string_to_metric_families(server.get("/metrics").text):
        for sample in family.samples:
            if sample.name.startswith("labwall_gpu_user_"):
                found[(sample.name, sample.labels["user"])] = sample.value
    return found


def steady(server: LabwallServer) -> tuple[dict[str, Any], dict[tuple[str, str], float]]:
    """/api/usage and /metrics read between the same two minute closings (counters equal before and after)."""
    def read() -> tuple[dict[str, Any], dict[tuple[str, str], float]] | None:
        before = counters(server)
        body = server.get("/api/usage?by=user").json()
        return (body, before) if body["rows"] and counters(server) == before else None

    return wait_for(read, timeout=100, interval=0.5, what="a closed usage minute in /api/usage")


def test_usage_by_user_splits_by_memory_and_matches_the_counters(usage_server: LabwallServer) -> None:
    body, found = steady(usage_server)
    assert body["bucket"] == "hour" and body["by"] == "user"
    assert body["until"] - body["since"] == pytest.approx(7 * 86400)
    rows = {r["key"]: r for r in body["rows"]}
    assert {"alice", "bob", "carol", "dave", "frank"} <= rows.keys()
    alice, bob, carol = rows["alice"], rows["bob"], rows["carol"]
    assert alice["held_hours"] == bob["held_hours"] > 0  # both held GPU 0 the whole time
    assert alice["gpu_hours"] == pytest.approx(3 * bob["gpu_hours"], abs=1e-5)  # 3 GiB : 1 GiB
    assert carol["idle_gpu_hours"] == carol["gpu_hours"] > 0 and carol["busy_gpu_hours"] == 0
    assert alice["idle_gpu_hours"] == 0 and alice["busy_gpu_hours"] == pytest.approx(0.8 * alice["gpu_hours"], abs=1e-5)
    assert alice["energy_kwh"] == pytest.approx(alice["gpu_hours"] * 0.4, abs=1e-5)  # 400 W
    assert sum(t[1] for t in alice["buckets"]) == pytest.approx(alice["gpu_hours"], abs=1e-5)
    assert len(alice["buckets"]) in (168, 169)
    assert body["total"]["gpu_hours"] == pytest.approx(sum(r["gpu_hours"] for r in body["rows"]), abs=1e-5)
    for user, row in rows.items():
        assert found[("labwall_gpu_user_seconds_total", user)] == pytest.approx(row["gpu_hours"] * 3600, abs=0.01)
        assert found[("labwall_gpu_user_idle_seconds_total", user)] == pytest.approx(row["idle_gpu_hours"] * 3600,
                                                                                     abs=0.01)
        assert found[("labwall_gpu_user_energy_joules_total", user)] == pytest.approx(row["energy_kwh"] * 3.6e6,
                                                                                      abs=50)


def test_by_gpu_and_by_run_and_day_buckets(usage_server: LabwallServer) -> None:
    steady(usage_server)
    now = time.time()
    body = usage_server.get(f"/api/usage?by=gpu&since={now - 3 * 86400:.0f}&bucket=day").json()
    assert body["bucket"] == "day" and len(body["total"]["buckets"]) in (3, 4)
    keys = {r["key"] for r in body["rows"]}
    assert {"test-host/0", "test-host/1", "test-host/2"} <= keys
    assert usage_server.get("/api/usage?by=run&since=2020-01-01T00:00:00Z&until=2020-01-02").json()["rows"] == []


@pytest.mark.parametrize(("query", "named"), [
    ("by=host", "'by'"),
    ("since=yesterday", "'since'"),
    ("until=nan", "'until'"),
    ("since=2030-01-02&until=2030-01-01", "'since'"),
    ("since=0&bucket=hour", "'bucket'"),
    ("bucket=week", "'bucket'"),
    ("sinse=0", "'sinse'"),
])
def test_bad_parameters_answer_400_naming_the_parameter(usage_server: LabwallServer, query: str, named: str) -> None:
    answer = usage_server.get(f"/api/usage?{query}")
    assert answer.status_code == 400, answer.text
    assert named in answer.json()["detail"]


def test_the_route_is_get_only(usage_server: LabwallServer) -> None:
    import httpx

    assert httpx.post(usage_server.url + "/api/usage", timeout=5).status_code == 405
