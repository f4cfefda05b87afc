"""The prometheus source without a browser: the query client against real loopback HTTP servers
(answers recorded from Prometheus 2.42, bad answers, a server too slow to answer, a dead port), the
flavor mappings, the remote-host registry, the collector's batching and failure handling, the
config section and the overview's cells."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from support import free_port

from collectors.base import SourceUnavailable
from collectors.prometheus.collector import PrometheusCollector
from collectors.prometheus.mapping import (
    assemble,
    assemble_runs,
    build_flavor,
    down_instances,
    main_metric,
    promql_string,
    sparklines,
)
from collectors.prometheus.query import PrometheusClient, PrometheusError, parse_matrix, parse_vector
from monitor.config import ConfigError, PrometheusConfig, parse_config
from monitor.model.remote_hosts import DOWN_ABSENT, DOWN_TARGET, RemoteHosts
from monitor.model.store import Store
from monitor.wall import overview

# Recorded from a real Prometheus 2.42 (honor_labels: true) scraping labwall-style exporters.
UTIL = (b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":'
        b'"labwall_gpu_utilization_ratio","gpu":"0","host":"gpu-1","instance":"127.0.0.1:55839","job":"labwall",'
        b'"uuid":"GPU-000"},"value":[1795628663.783,"0"]},{"metric":{"__name__":"labwall_gpu_utilization_ratio",'
        b'"gpu":"1","host":"gpu-1","instance":"127.0.0.1:55839","job":"labwall","uuid":"GPU-001"},'
        b'"value":[1795628663.783,"0.13"]}]}}')
CPU = (b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":'
       b'"labwall_host_cpu_utilization_ratio","host":"gpu-1","instance":"127.0.0.1:55839","job":"labwall"},'
       b'"value":[1795628663.833,"0"]},{"metric":{"__name__":"labwall_host_cpu_utilization_ratio","host":"gpu-2",'
       b'"instance":"127.0.0.1:55839","job":"labwall"},"value":[1795628663.833,"0.1"]}]}}')
UP_DOWN = (b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up",'
           b'"instance":"127.0.0.1:1","job":"labwall"},"value":[1795628663.869,"0"]}]}}')
FB_USED = (b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"DCGM_FI_DRIVER_VERSION":'
           b'"550.54.15","Hostname":"dgx-1","UUID":"GPU-dgx-1-0","__name__":"DCGM_FI_DEV_FB_USED","device":"nvidia0",'
           b'"gpu":"0","instance":"127.0.0.1:55329","job":"dcgm","modelName":"NVIDIA A100-SXM4-80GB","pci_bus_id":'
           b'"00000000:00:00.0"},"value":[1795628663.957,"40000"]}]}}')
SPARK = (b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"host":"gpu-1"},"values":'
         b'[[1795628661.966,"45.5"],[1795628663.966,"45.5"]]},{"metric":{"host":"gpu-2"},"values":'
         b'[[1795628661.966,"52.5"],[1795628663.966,"NaN"]]}]}}')
BAD_REGEX = (b'{"status":"error","errorType":"bad_data","error":"invalid parameter \\"query\\": 1:31: parse error: '
             b'error parsing regexp: missing closing ): `^(?:()$`"}')
EMPTY = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
EMPTY_MATRIX = b'{"status":"success","data":{"resultType":"matrix","result":[]}}'


def vector(*series: tuple[dict[str, str], float]) -> bytes:
    result = [{"metric": labels, "value": [1795628663.5, repr(float(v))]} for labels, v in series]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()


# -- parsing ----------------------------------------------------------------------------------------
def test_recorded_answers_parse_into_samples() -> None:
    util = parse_vector(UTIL)
    assert [(s.labels["host"], s.labels["gpu"], s.value) for s in util] == [("gpu-1", "0", 0.0), ("gpu-1", "1", 0.13)]
    assert util[0].time == 1795628663.783 and util[0].labels["uuid"] == "GPU-000"
    spark = parse_matrix(SPARK)
    assert [(s.labels, s.points) for s in spark] == [({"host": "gpu-1"}, [(1795628661.966, 45.5),
                                                                            (1795628663.966, 45.5)]),
                                                     ({"host": "gpu-2"}, [(1795628661.966, 52.5)])]  # NaN left out


@pytest.mark.parametrize(("body", "reason"), [
    (b"<html>502 Bad Gateway</html>", "answer is not JSON (Expecting value at character 0): '<html>502 Bad Gateway"),
    (b'{"status":"success","data":{"resultType":"vec', "answer is not JSON (Unterminated string"),
    (b"\xff\xfe{}", "answer is not UTF-8 text"),
    (b"[1, 2]", "answer is a JSON list, not an object"),
    (BAD_REGEX, "Prometheus says bad_data: invalid parameter \"query\": 1:31: parse error: error parsing regexp"),
    (b'{"status":"pending"}', "answer has status 'pending', expected 'success'"),
    (b'{"status":"success"}', "answer has no 'data' object"),
    (b'{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}',
     "answer has resultType 'scalar', expected 'vector'"),
    (b'{"status":"success","data":{"resultType":"vector","result":{}}}', "answer's data.result is not a list"),
    (b'{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"1"]}]}}',
     "result[0] has no 'metric' object"),
    (b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":1},"value":[1,"1"]}]}}',
     "result[0].metric has a label that is not a string"),
    (b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,2]}]}}',
     'result[0].value is not [time, "value"]: \'[1, 2]\''),
    (b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"lots"]}]}}',
     "result[0].value has a value that is not a number: 'lots'"),
])
def test_bad_answers_give_a_clear_reason(body: bytes, reason: str) -> None:
    with pytest.raises(PrometheusError) as caught:
        parse_vector(body)
    assert str(caught.value).startswith(reason), str(caught.value)


def test_a_range_answer_with_a_bad_point_names_it() -> None:
    body = b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2]]}]}}'
    with pytest.raises(PrometheusError, match=r"result\[0\]\.values\[1\] is not \[time, \"value\"\]"):
        parse_matrix(body)


# -- a real HTTP server on loopback ----------------------------------------------------------------
@dataclass
class FakePrometheus:
    """Answers each query from `answers` (PromQL -> (status, body)); records what it was asked."""

    answers: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    default: tuple[int, bytes] = (200, EMPTY)
    delay_s: float = 0.0
    asked: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def fake() -> Iterator[FakePrometheus]:
    state = FakePrometheus()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            state.asked.append((self.path, form))
            if state.delay_s:
                state.release.wait(state.delay_s)  # a slow server: answers late (or when the test ends)
            empty = (200, EMPTY_MATRIX) if self.path.endswith("query_range") else state.default
            status, body = state.answers.get(form["query"][0], empty)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


def test_the_client_posts_queries_and_parses_answers(fake: FakePrometheus) -> None:
    fake.answers["labwall_gpu_utilization_ratio"] = (200, UTIL)
    client = PrometheusClient(fake.url, timeout_s=2)
    samples = client.query("labwall_gpu_utilization_ratio")
    assert [s.value for s in samples] == [0.0, 0.13]
    fake.answers["spark"] = (200, SPARK)
    series = client.query_range("spark", 100.0, 160.0, 10)
    assert [s.labels["host"] for s in series] == ["gpu-1", "gpu-2"]
    assert fake.asked[0] == ("/api/v1/query", {"query": ["labwall_gpu_utilization_ratio"]})
    assert fake.asked[1] == ("/api/v1/query_range", {"query": ["spark"], "start": ["100.000"], "end": ["160.000"],
                                                     "step": ["10"]})
    assert client.queries == 2


def test_http_errors_carry_prometheus_own_reason(fake: FakePrometheus) -> None:
    fake.answers["bad("] = (400, BAD_REGEX)
    fake.answers["boom"] = (502, b"<html>bad gateway</html>")
    client = PrometheusClient(fake.url, timeout_s=2)
    with pytest.raises(PrometheusError, match=r"^HTTP 400: Prometheus says bad_data: invalid parameter"):
        client.query("bad(")
    with pytest.raises(PrometheusError, match=r"^HTTP 502 Bad Gateway from http://127\.0\.0\.1:\d+/api/v1/query$"):
        client.query("boom")


def test_a_slow_server_times_out_instead_of_blocking(fake: FakePrometheus) -> None:
    fake.delay_s = 10.0
    client = PrometheusClient(fake.url, timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(PrometheusError, match=r"^no answer within 0\.3 s \(timed out\)$"):
        client.query("up")
    assert time.monotonic() - started < 2.0


def test_a_dead_port_is_reported_as_unreachable() -> None:
    client = PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout_s=1)
    with pytest.raises(PrometheusError, match=r"^cannot reach http://127\.0\.0\.1:\d+: Connection refused$"):
        client.query("up")


# -- mapping ----------------------------------------------------------------------------------------
def labwall_results(hosts: dict[str, list[float]], instance: str = "10.0.0.1:8080") -> dict[str, list]:
    """What the labwall flavor's queries answer for `hosts` (host -> GPU utilisation ratios)."""
    def rows(gpu: bool, value: object) -> list:
        out = []
        for host, utils in hosts.items():
            base = {"host": host, "instance": f"{host}:8080" if instance == "per-host" else instance, "job": "lw"}
            if gpu:
                out += [({**base, "gpu": str(g), "uuid": f"GPU-{host}-{g}", "name": "NVIDIA H100"},
                         value(u) if callable(value) else value) for g, u in enumerate(utils)]
            else:
                out.append((base, value))
        return parse_vector(vector(*out))
    return {"gpu:_gpu_info": rows(True, 1), "gpu:_gpu_up": rows(True, 1),
            "gpu:utilization_gpu_percent": rows(True, lambda u: u),
            "gpu:memory_used_bytes": rows(True, 20 * 1024**3), "gpu:memory_total_bytes": rows(True, 80 * 1024**3),
            "gpu:temperature_celsius": rows(True, 61), "host:_seen": rows(False, 1),
            "host:cpu_percent": rows(False, 0.25), "host:memory_total_bytes": rows(False, 64e9)}


def test_labwall_flavor_turns_answers_into_host_readings() -> None:
    config = PrometheusConfig(url="http://prom:9090", host_selector="gpu-.*")
    flavor = build_flavor(config)
    assert {m.promql for m in flavor.metrics} >= {'labwall_gpu_utilization_ratio{host=~"gpu-.*"}',
                                                   'labwall_info{host=~"gpu-.*"}'}
    results = labwall_results({"gpu-1": [0.5, 0.97], "gpu-2": [0.0], "other": [1.0]}, instance="per-host")
    readings = assemble(flavor, results, config.host_selector)
    assert sorted(readings) == ["gpu-1", "gpu-2"]  # "other" is not selected
    g1 = readings["gpu-1"]
    assert [g["utilization_gpu_percent"] for g in g1.gpus.values()] == [50.0, 97.0]
    assert g1.gpus["1"] == {"index": 1, "uuid": "GPU-gpu-1-1", "name": "NVIDIA H100", "status": "ok",
                            "utilization_gpu_percent": 97.0, "memory_used_bytes": 20 * 1024**3,
                            "memory_total_bytes": 80 * 1024**3, "temperature_celsius": 61.0,
                            "power_draw_watts": None, "power_limit_watts": None}
    assert g1.system == {"cpu_percent": 25.0, "memory_total_bytes": 64e9}
    assert g1.instances == {"gpu-1:8080"}


def test_dcgm_flavor_reads_dcgm_names_mib_and_node_exporter_hosts() -> None:
    config = PrometheusConfig(url="http://prom:9090", flavor="dcgm", host_selector="dgx-[0-9]+")
    flavor = build_flavor(config)
    queries = {m.key: m.promql for m in flavor.metrics if m.scope == "gpu"}
    assert queries["memory_total_bytes"] == ('DCGM_FI_DEV_FB_USED{Hostname=~"dgx-[0-9]+"} + '
                                             'DCGM_FI_DEV_FB_FREE{Hostname=~"dgx-[0-9]+"}')
    node = {m.key: m.promql for m in flavor.metrics if m.scope == "host"}
    assert 'instance=~"(dgx-[0-9]+)(:[0-9]+)?"' in node["cpu_percent"]
    results = {"gpu:memory_used_bytes": parse_vector(FB_USED),
               "gpu:utilization_gpu_percent": parse_vector(vector((
                   {"gpu": "0", "UUID": "GPU-dgx-1-0", "modelName": "NVIDIA A100", "Hostname": "dgx-1"}, 87))),
               "host:cpu_percent": parse_vector(vector(({"instance": "dgx-1:9100"}, 25.0))),
               "host:memory_total_bytes": parse_vector(vector(({"instance": "dgx-1:9100", "job": "node"}, 2**38)))}
    readings = assemble(flavor, results, config.host_selector)
    assert list(readings) == ["dgx-1"]  # DCGM's Hostname and node_exporter's instance (":9100" dropped) meet
    gpu = readings["dgx-1"].gpus["0"]
    assert gpu["memory_used_bytes"] == 40000 * 1024**2 and gpu["utilization_gpu_percent"] == 87
    assert gpu["uuid"] == "GPU-dgx-1-0" and gpu["name"] == "NVIDIA A100"  # labels of the first query (util)
    assert readings["dgx-1"].system == {"cpu_percent": 25.0, "memory_total_bytes": 2**38}


def test_down_targets_sparklines_runs_and_quoting() -> None:
    assert down_instances(parse_vector(UP_DOWN)) == {"127.0.0.1:1"}
    flavor = build_flavor(PrometheusConfig(url="http://p:1"))
    assert sparklines(flavor, parse_matrix(SPARK)) == {"gpu-1": [45.5, 45.5], "gpu-2": [52.5]}
    assert promql_string('a"b\\c') == '"a\\"b\\\\c"'
    run = {"host": "gpu-2", "run": "r1"}
    results = {"run:_run_info": parse_vector(vector(({**run, "name": "llama-ft", "root": "/runs"}, 1))),
               "run:step": parse_vector(vector((run, 1200))),
               "run:_status": parse_vector(vector(({**run, "status": "running"}, 1), ({**run, "status": "x"}, 0))),
               "run:_metric": parse_vector(vector(({**run, "metric": "lr"}, 1e-4), ({**run, "metric": "loss"}, 1.83))),
               "run:updated": parse_vector(vector((run, 1795628660)))}
    assert assemble_runs(flavor, results) == [{
        "id": "gpu-2/r1", "run": "r1", "host": "gpu-2", "name": "llama-ft", "status": "running", "step": 1200.0,
        "updated": 1795628660.0, "metrics": {"lr": 1e-4, "loss": 1.83}, "main_metric": "loss", "main_value": 1.83}]
    assert main_metric({"val_loss": 1, "acc": 2}) == "val_loss"
    assert main_metric({"b": 1, "a": 2}) == "a"
    assert main_metric({}) is None


# -- the registry and the collector ------------------------------------------------------------------
def test_the_registry_marks_missing_and_down_hosts_and_keeps_data_when_prometheus_fails() -> None:
    flavor = build_flavor(PrometheusConfig(url="http://p:1"))
    remote = RemoteHosts()
    remote.update(assemble(flavor, labwall_results({"a": [0.5], "b": [0.9]}, "per-host")), [], set(), 100.0)
    view = remote.view()
    assert [(h.host, h.up, h.last_seen) for h in view.hosts] == [("a", True, 100.0), ("b", True, 100.0)]
    # b's series are gone (its target stopped: staleness markers); a's target is down (up == 0)
    remote.update(assemble(flavor, labwall_results({"a": [0.5]}, "per-host")), [], {"a:8080"}, 105.0)
    view = remote.view()
    assert [(h.host, h.up, h.last_seen, h.down_reason) for h in view.hosts] == [
        ("a", False, 100.0, DOWN_TARGET), ("b", False, 100.0, DOWN_ABSENT)]
    assert view.hosts[1].gpus[0]["utilization_gpu_percent"] == 90.0  # the last values stay
    since = remote.failed("cannot reach http://p:1: Connection refused", 107.0)
    assert remote.failed("no answer within 2 s (timed out)", 109.0) == since == 107.0
    view = remote.view()
    assert view.source.failing_since == 107.0 and view.source.reason.startswith("no answer")
    assert len(view.hosts) == 2
    remote.update({}, [], set(), 110.0, forget_after_s=5.0)  # b last seen 10 s ago: forgotten
    view = remote.view()
    assert view.hosts == () and view.source.failing_since is None and view.source.ok_time == 110.0


def test_the_collector_sends_one_query_per_metric_whatever_the_number_of_hosts(fake: FakePrometheus) -> None:
    config = PrometheusConfig(url=fake.url, interval_s=1.0, range_every=3)
    store = Store("wall")
    collector = PrometheusCollector(store, config)
    per_reading = len(collector.flavor.metrics) + len(collector.flavor.runs) + 1  # + "up == 0"
    for hosts in (1, 32):
        results = labwall_results({f"gpu-{i}": [0.5] * 8 for i in range(hosts)})
        fake.answers = {m.promql: (200, _body(results.get(f"{m.scope}:{m.key}", []))) for m in collector.flavor.metrics}
        fake.asked.clear()
        collector.readings = 1  # not a sparkline reading
        collector.collect(time.time())
        assert len(fake.asked) == per_reading  # never one per host
        assert all(path == "/api/v1/query" for path, _ in fake.asked)
        assert len(store.remote.view().hosts) == hosts
    fake.asked.clear()
    collector.readings = 3
    collector.collect(time.time())
    assert [path for path, _ in fake.asked].count("/api/v1/query_range") == 1


def _body(samples: list) -> bytes:
    return vector(*[(s.labels, s.value) for s in samples])


def test_a_dead_or_slow_prometheus_fails_the_reading_fast_and_keeps_the_last_data(fake: FakePrometheus) -> None:
    store = Store("wall")
    config = PrometheusConfig(url=fake.url, interval_s=1.0, timeout_s=0.3)
    collector = PrometheusCollector(store, config)
    fake.answers = {m.promql: (200, _body(labwall_results({"gpu-1": [0.4]}).get(f"{m.scope}:{m.key}", [])))
                    for m in collector.flavor.metrics}
    collector.collect(time.time())
    assert [h.host for h in store.remote.view().hosts] == ["gpu-1"]
    fake.delay_s = 10.0
    started = time.monotonic()
    with pytest.raises(SourceUnavailable) as caught:
        collector.collect(time.time())
    assert time.monotonic() - started < 2.5  # one timed-out query (0.3 s) ends the reading
    assert re.fullmatch(r"Prometheus not answering since \d\d:\d\d:\d\d: no answer within 0\.3 s \(timed out\)",
                        caught.value.reason)
    view = store.remote.view()
    assert view.source.failing_since is not None and [h.host for h in view.hosts] == ["gpu-1"]
    assert view.hosts[0].up  # the host is not blamed for Prometheus' silence
    fake.delay_s = 0.0
    collector.collect(time.time())
    assert store.remote.view().source.failing_since is None


# -- config and the overview's cells ----------------------------------------------------------------
def test_config_section_is_off_by_default_and_validated() -> None:
    assert parse_config({}).prometheus.url is None
    ok = parse_config({"prometheus": {"url": "http://prom:9090/", "flavor": "dcgm"}}).prometheus
    assert ok.url == "http://prom:9090" and ok.dcgm_host_label == "Hostname" and ok.node_host_label == "instance"
    with pytest.raises(ConfigError) as caught:
        parse_config({"prometheus": {"url": "prom:9090", "host_selector": "(", "flavour": "dcgm", "flavor": "x",
                                     "timeout_s": 0, "dcgm_host_label": "9x"}})
    problems = "\n".join(caught.value.problems)
    assert "prometheus.url: 'prom:9090' — must be an http:// or https:// URL of a Prometheus server" in problems
    assert "prometheus.host_selector: '(' — '(' is not a valid regular expression" in problems
    assert "prometheus.flavour: unknown key" in problems
    assert "prometheus.flavor: 'x' — input should be 'labwall' or 'dcgm'" in problems
    assert "prometheus.timeout_s: 0 — must be > 0" in problems
    assert "prometheus.dcgm_host_label: '9x' — must be a Prometheus label name" in problems


def test_overview_cells_say_down_stale_and_colour_by_utilisation() -> None:
    config = parse_config({"host_label": "a", "prometheus": {"url": "http://p:1"}})
    flavor = build_flavor(config.prometheus)
    remote = RemoteHosts()
    remote.configure("http://p:1")
    remote.update(assemble(flavor, labwall_results({"a": [0.05, 0.95], "b": [0.5]}, "per-host")), [], set(),
                  time.time())
    remote.update(assemble(flavor, labwall_results({"a": [0.05, 0.95]}, "per-host")), [], set(), time.time())
    view = remote.view()
    cells = overview.overview_cells(view, config, time.time(), *overview.shape(view))
    assert cells["h0.s"].text == "2 GPUs · 1 busy · this server"
    assert [cells["h0.g0"].level, cells["h0.g1"].level, cells["h0.g0.u"].text] == ["u0", "u4", "5"]
    assert cells["h0.g0"].pct == 25 and cells["h0.g0.t"].text == "61°"
    assert cells["h1"].level == "down" and cells["h1.g1"].level == "off"
    assert re.fullmatch(r"DOWN · last seen \d\d:\d\d:\d\d", cells["h1.s"].text) and cells["h1.s"].level == "crit"
    assert cells["ov.count"].text == "1 / 2 up" and cells["ov.src"].text.startswith("via Prometheus")
    remote.failed("cannot reach http://p:1: Connection refused", time.time())
    stale = overview.source_cells(remote.view(), config, time.time())
    assert stale["ov"].level == "stale" and stale["ov.src"].level == "crit"
    assert re.fullmatch(r"Prometheus not answering since \d\d:\d\d:\d\d: cannot reach http://p:1: Connection refused",
                        stale["ov.src"].text)
    assert [overview.columns(n) for n in (3, 8, 9, 32, 33)] == [1, 1, 1, 2, 3]
