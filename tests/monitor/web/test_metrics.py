"""GET /metrics: Prometheus text read back with prometheus-client's own parser, from a store filled
here (in-process route) and from a real server on loopback (against its /api/snapshot)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import LabwallServer, wait_for

from collectors.base import CollectorHealth
from monitor.model import metric_names as names
from monitor.model.ringbuffer import RingBuffer
from monitor.model.run_points import MetricSeries
from monitor.model.samples import Sample, make_labels
from monitor.model.store import Store
from monitor.web.metrics import exporter_registry, labwall_version, metrics_text

HOST = "lab-1"
GiB = 1024**3
LAST_STEP = 10_000
HOSTILE = 'a "quoted" name\nsecond line \\ back\\slash'
Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def gpu_entry(index: int, **fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "index": index, "uuid": f"GPU-{index}", "name": "NVIDIA H100", "status": "ok",
        "utilization_gpu_percent": 87.0, "memory_used_bytes": 40 * GiB, "memory_total_bytes": 80 * GiB,
        "temperature_celsius": 71.0, "power_draw_watts": 512.5, "power_limit_watts": 700.0, "processes": [],
    }
    return {**entry, **fields}


def filled_store(points: int = 60, user: str = "alice", run_name: str = "llama/ft-1") -> Store:
    """A store as the collectors leave it: GPU, system and join documents, health, one run, history."""
    store = Store(HOST, window_s=points)
    now = 1_800_000_000.0
    process = {"pid": 4242, "user": user, "command": "python train.py", "gpu_memory_bytes": 30 * GiB}
    unjoined = {"pid": 5151, "user": "bob", "command": "python eval.py", "gpu_memory_bytes": 2 * GiB}
    lost = {key: None for key in gpu_entry(1) if key not in ("index", "uuid", "name", "processes")}
    gpus = [
        gpu_entry(0, processes=[process, unjoined]),
        gpu_entry(1, **{**lost, "status": "lost"}),  # a lost GPU: identity and up=0, no readings
        gpu_entry(2, power_draw_watts=None, temperature_celsius=float("nan")),  # unsupported fields
    ]
    store.set_state("gpu", {"backend": "simulated", "state": "ok", "gpus": gpus}, now)
    system = {"cpu_percent": 37.5, "memory_used_bytes": 12 * GiB, "memory_total_bytes": 64 * GiB,
              "load_average": [1.5, 1.2, 1.0], "disks": [{"path": "/data/runs", "used_ratio": 0.42},
                                                         {"path": "/gone", "error": "not found"}]}
    store.set_state("system", system, now)
    registry = store.runs
    run = registry.add_run("llama-ft-1-0123456789", run_name, "/data/runs/llama/ft-1", "/data/runs", "jsonl", now)
    steps = np.arange(LAST_STEP - points + 1, LAST_STEP + 1)  # the same last step whatever the history
    registry.merge_points(run.id, "loss", steps, now - LAST_STEP + steps.astype(float), np.linspace(3.0, 1.25, points))
    registry.merge_points(run.id, 'eval/"acc"', steps, now - LAST_STEP + steps.astype(float), np.full(points, 0.5))
    registry.update(run.id, updated=now)
    registry.note_bad_lines(run.id, 3, "metrics.jsonl", 7, "not JSON")
    registry.set_status(run.id, "stalled", "no data for 10 min")
    store.set_state("gpu_runs", {"by_pid": {4242: {"run_id": run.id, "run_name": run_name}}}, now)
    # History in the ring buffers: the exporter must never read it.
    for i in range(points):
        store.append([Sample("gpu_utilization_percent", make_labels(host=HOST, gpu=0, uuid="GPU-0"),
                             now - points + i, float(i % 100))], interval_s=1.0)
    ok, failing = CollectorHealth("gpu", 1.0), CollectorHealth("runs", 0.1)
    ok.ok(now)
    failing.failed("error", "OSError: boom", now)
    store.register_health("gpu", ok)
    store.register_health("runs", failing)
    return store


def scrape(store: Store) -> str:
    """What GET /metrics answers for `store` (the HTTP side is tested on a real server below)."""
    return metrics_text(exporter_registry(store)).decode()


def series_of(text: str) -> Series:
    found: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in found, f"duplicate series {key}"
            found[key] = sample.value
    return found


def key(metric: str, /, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return metric, frozenset({"host": HOST, **labels}.items())


def test_names_labels_units_and_values_of_a_filled_store() -> None:
    text = scrape(filled_store())
    run = "llama-ft-1-0123456789"
    g0, g1, g2 = ({"gpu": str(i), "uuid": f"GPU-{i}"} for i in range(3))
    expected = {
        key("labwall_info", version=labwall_version()): 1.0,
        key("labwall_gpu_info", name="NVIDIA H100", **g0): 1.0,
        key("labwall_gpu_info", name="NVIDIA H100", **g1): 1.0,
        key("labwall_gpu_info", name="NVIDIA H100", **g2): 1.0,
        key("labwall_gpu_up", **g0): 1.0, key("labwall_gpu_up", **g1): 0.0, key("labwall_gpu_up", **g2): 1.0,
        key("labwall_gpu_utilization_ratio", **g0): 0.87, key("labwall_gpu_utilization_ratio", **g2): 0.87,
        key("labwall_gpu_memory_used_bytes", **g0): 40 * GiB, key("labwall_gpu_memory_used_bytes", **g2): 40 * GiB,
        key("labwall_gpu_memory_total_bytes", **g0): 80 * GiB,
        key("labwall_gpu_memory_total_bytes", **g2): 80 * GiB,
        key("labwall_gpu_temperature_celsius", **g0): 71.0,
        key("labwall_gpu_power_watts", **g0): 512.5,
        key("labwall_gpu_power_limit_watts", **g0): 700.0, key("labwall_gpu_power_limit_watts", **g2): 700.0,
        key("labwall_gpu_process_memory_bytes", pid="4242", user="alice", run=run, **g0): 30 * GiB,
        key("labwall_gpu_process_memory_bytes", pid="5151", user="bob", run="", **g0): 2 * GiB,
        key("labwall_host_cpu_utilization_ratio"): 0.375,
        key("labwall_host_memory_used_bytes"): 12 * GiB,
        key("labwall_host_memory_total_bytes"): 64 * GiB,
        key("labwall_host_load1"): 1.5,
        key("labwall_host_disk_used_ratio", mountpoint="/data/runs"): 0.42,
        key("labwall_run_info", run=run, name="llama/ft-1", root="/data/runs"): 1.0,
        key("labwall_run_step", run=run): float(LAST_STEP),
        key("labwall_run_status", run=run, status="stalled"): 1.0,
        key("labwall_run_metric", run=run, metric="loss"): 1.25,
        key("labwall_run_metric", run=run, metric='eval/"acc"'): 0.5,
        key("labwall_run_last_update_timestamp_seconds", run=run): 1_800_000_000.0,
        key("labwall_run_bad_lines_total", run=run): 3.0,
        key("labwall_collector_up", collector="gpu"): 1.0,
        key("labwall_collector_up", collector="runs"): 0.0,
        key("labwall_collector_last_success_timestamp_seconds", collector="gpu"): 1_800_000_000.0,
    }
    # Equality of the whole set: nothing unknown is exported (lost GPU readings, NaN temperature,
    # missing power, the unreadable disk, the never-successful collector's timestamp, network counters).
    assert series_of(text) == pytest.approx(expected)
    assert "NaN" not in text


def test_types_and_help_follow_the_shared_name_table() -> None:
    families = {f.name: f for f in text_string_to_metric_families(scrape(filled_store()))}
    table = {d.name.removesuffix("_total") if d.kind == "counter" else d.name: d for d in names.ALL}
    assert families.keys() <= table.keys()
    for name, family in families.items():
        assert family.type == table[name].kind, name
        assert family.documentation == table[name].help
        for sample in family.samples:
            assert set(sample.labels) == set(table[name].all_labels), sample
    assert families["labwall_run_bad_lines"].samples[0].name == "labwall_run_bad_lines_total"


def test_hostile_label_values_are_escaped_and_read_back_identically() -> None:
    text = scrape(filled_store(user=HOSTILE, run_name=HOSTILE))
    found = series_of(text)
    users = {dict(labels).get("user") for name, labels in found if name == "labwall_gpu_process_memory_bytes"}
    assert HOSTILE in users
    names_read = [dict(labels)["name"] for name, labels in found if name == "labwall_run_info"]
    assert names_read == [HOSTILE]
    assert any(line.startswith("labwall_run_info{") and "\\n" in line for line in text.splitlines())


@pytest.fixture
def history_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Records every call that reads history (ring buffers, run metric points) during a scrape."""
    calls: list[str] = []
    for owner, method in ((RingBuffer, "read_after"), (RingBuffer, "latest"), (MetricSeries, "read_after"),
                          (MetricSeries, "arrays"), (Store, "changed_after"), (Store, "read_day_after")):
        original = getattr(owner, method)

        def spy(*args: Any, _original: Any = original, _name: str = f"{owner.__name__}.{method}",
                **kwargs: Any) -> Any:
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(owner, method, spy)
    yield calls


def test_scrape_cost_does_not_grow_with_history(history_reads: list[str]) -> None:
    short, long = filled_store(points=60), filled_store(points=3600)
    assert long.stats()["points"] == 60 * short.stats()["points"] and long.runs.stats()["points"] == 7200
    history_reads.clear()
    short_text, long_text = scrape(short), scrape(long)
    assert history_reads == []  # no history read at all, only the latest documents and values
    # Same latest values, 60x the history: the same answer, byte for byte (so the same size).
    assert short_text == long_text
    assert len(short_text.encode()) == len(long_text.encode())


@pytest.fixture(scope="module")
def frozen_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabwallServer]:
    """A real server whose GPUs and host are read once (10-minute intervals), so /metrics and
    /api/snapshot describe the very same reading."""
    config = {"host_label": 'rack "2"\\gpu-7', "gpu": {"backend": "simulated", "simulated_count": 3,
                                                       "interval_s": 600},
              "host": {"interval_s": 600}}
    server = LabwallServer(tmp_path_factory.mktemp("metrics"), config).start()
    yield server
    server.stop()


def test_real_server_metrics_match_its_snapshot(frozen_server: LabwallServer) -> None:
    snapshot = wait_for(lambda: (s := frozen_server.get("/api/snapshot").json())["gpus"] and s["system"] and s,
                        timeout=20, what="a GPU and host reading")
    response = frozen_server.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    found = series_of(response.text)
    host = snapshot["host"]
    assert host == 'rack "2"\\gpu-7'
    assert {dict(labels)["host"] for _, labels in found} == {host}

    def value(metric: str, /, **labels: Any) -> float:
        return found[(metric, frozenset({"host": host, **{k: str(v) for k, v in labels.items()}}.items()))]

    assert len(snapshot["gpus"]) == 3
    for gpu in snapshot["gpus"]:
        ids = {"gpu": gpu["index"], "uuid": gpu["uuid"]}
        assert value("labwall_gpu_info", name=gpu["name"], **ids) == 1
        assert value("labwall_gpu_up", **ids) == 1
        assert value("labwall_gpu_utilization_ratio", **ids) == pytest.approx(gpu["utilization_gpu_percent"] / 100)
        assert value("labwall_gpu_memory_used_bytes", **ids) == gpu["memory_used_bytes"]
        assert value("labwall_gpu_memory_total_bytes", **ids) == gpu["memory_total_bytes"]
        assert value("labwall_gpu_temperature_celsius", **ids) == gpu["temperature_celsius"]
        assert value("labwall_gpu_power_watts", **ids) == pytest.approx(gpu["power_draw_watts"])
        assert value("labwall_gpu_power_limit_watts", **ids) == gpu["power_limit_watts"]
        for p in gpu["processes"]:
            assert value("labwall_gpu_process_memory_bytes", pid=p["pid"], user=p["user"], run="",
                         **ids) == p["gpu_memory_bytes"]
    system = snapshot["system"]
    assert value("labwall_host_cpu_utilization_ratio") == pytest.approx(system["cpu_percent"] / 100)
    assert value("labwall_host_memory_used_bytes") == system["memory_used_bytes"]
    assert value("labwall_host_memory_total_bytes") == system["memory_total_bytes"]
    assert value("labwall_host_load1") == pytest.approx(system["load_average"][0])
    assert value("labwall_info", version=labwall_version()) == 1
    assert value("labwall_collector_up", collector="gpu") == 1


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_metrics_is_get_only(frozen_server: LabwallServer, method: str) -> None:
    response = httpx.request(method, frozen_server.url + "/metrics", timeout=5)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
