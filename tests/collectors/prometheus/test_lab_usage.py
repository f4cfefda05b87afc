"""Lab-wide GPU-hours through Prometheus without a browser: the two queries, their answers as the
"lab_usage" document, the collector's schedule and failure handling against a real loopback HTTP
server, the config key, and the usage strip's choice between the lab's numbers and this host's."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from collectors.prometheus.collector import PrometheusCollector
from collectors.prometheus.lab_usage import lab_usage_document, usage_max_age_s, usage_queries
from collectors.prometheus.query import parse_vector
from monitor.config import ConfigError, PrometheusConfig, parse_config
from monitor.model.documents import Source
from monitor.model.store import Store
from monitor.wall.usage_strip import LAB_TITLE, TITLE, UsageStrip

HOURS_Q = 'sum by (user) (increase(labwall_gpu_user_seconds_total{host=~"gpu-.*"}[7d]))'
IDLE_Q = 'sum by (user) (increase(labwall_gpu_user_idle_seconds_total{host=~"gpu-.*"}[7d]))'
# The shape Prometheus answers `sum by (user) (...)` with: no __name__, only the user label.
HOURS = (b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"user":"alice"},'
         b'"value":[1795628663.783,"7200"]},{"metric":{"user":"carol"},"value":[1795628663.783,"36000.5"]},'
         b'{"metric":{},"value":[1795628663.783,"360"]},{"metric":{"user":"bob"},"value":[1795628663.783,"NaN"]}]}}')
IDLE = (b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"user":"carol"},'
        b'"value":[1795628663.783,"36001"]},{"metric":{"user":"alice"},"value":[1795628663.783,"720"]}]}}')
EMPTY = b'{"status":"success","data":{"resultType":"vector","result":[]}}'


def test_the_queries_sum_each_users_counters_over_the_selected_hosts() -> None:
    queries = usage_queries(PrometheusConfig(url="http://prom:9090", host_selector="gpu-.*"))
    assert (queries.gpu_seconds, queries.idle_seconds) == (HOURS_Q, IDLE_Q)
    quoted = usage_queries(PrometheusConfig(url="http://prom:9090", host_selector='a"b\\d'))
    assert '{host=~"a\\"b\\\\d"}' in quoted.gpu_seconds  # a PromQL string, whatever the regex holds


def test_the_answers_become_gpu_hours_per_user_largest_first() -> None:
    doc = lab_usage_document(parse_vector(HOURS), parse_vector(IDLE), 1000.0, 90.0)
    assert doc["time"] == 1000.0 and doc["window_s"] == 7 * 86400 and doc["max_age_s"] == 90.0
    assert doc["users"] == [
        {"user": "carol", "gpu_hours": 36000.5 / 3600, "idle_gpu_hours": 36000.5 / 3600},  # idle <= hours
        {"user": "alice", "gpu_hours": 2.0, "idle_gpu_hours": 0.2},
        {"user": "", "gpu_hours": 0.1, "idle_gpu_hours": 0.0},  # no user label, no idle series
    ]  # bob's NaN (no samples to compare) is left out
    assert lab_usage_document([], [], 5.0, 60.0)["users"] == []


def test_the_answer_stays_fresh_a_few_usage_intervals() -> None:
    assert usage_max_age_s(PrometheusConfig(url="http://p:1", interval_s=2, usage_every=30, timeout_s=2)) == 182
    assert usage_max_age_s(PrometheusConfig(url="http://p:1", interval_s=1, usage_every=1)) == 60  # at least 1 min


def test_usage_every_is_validated() -> None:
    assert parse_config({}).prometheus.usage_every == 30
    for bad, reason in ((0, "prometheus.usage_every: 0 — must be >= 1"),
                        (1.5, "prometheus.usage_every: 1.5 — input should be a valid integer")):
        with pytest.raises(ConfigError) as caught:
            parse_config({"prometheus": {"url": "http://prom:9090", "usage_every": bad}})
        assert any(p.startswith(reason) for p in caught.value.problems), caught.value.problems


# -- the collector against a loopback server ---------------------------------------------------------
@dataclass
class Answers:
    by_query: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    port: int = 0


@pytest.fixture
def prom() -> Iterator[Answers]:
    state = Answers()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())["query"][0]
            state.asked.append(query)
            matrix = b'{"status":"success","data":{"resultType":"matrix","result":[]}}'
            status, body = state.by_query.get(query, (200, matrix if self.path.endswith("range") else EMPTY))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


def test_the_collector_reads_usage_every_n_readings_and_keeps_the_last_answer_on_failure(prom: Answers) -> None:
    store = Store("wall")
    config = PrometheusConfig(url=f"http://127.0.0.1:{prom.port}", host_selector="gpu-.*", usage_every=3,
                              interval_s=1.0, timeout_s=1.0)
    collector = PrometheusCollector(store, config)
    prom.by_query = {HOURS_Q: (200, HOURS), IDLE_Q: (200, IDLE)}
    collector.collect(100.0)  # reading 0: usage is due
    assert prom.asked.count(HOURS_Q) == 1 and prom.asked.count(IDLE_Q) == 1
    when, doc = store.state(Source.LAB_USAGE)
    assert when == 100.0 and doc["time"] == 100.0 and [u["user"] for u in doc["users"]] == ["carol", "alice", ""]
    prom.asked.clear()
    collector.collect(101.0)
    collector.collect(102.0)
    assert HOURS_Q not in prom.asked and IDLE_Q not in prom.asked  # readings 1 and 2: not due
    prom.by_query[IDLE_Q] = (503, b'{"status":"error","errorType":"unavailable","error":"query queue full"}')
    collector.collect(103.0)  # reading 3: due, the idle query fails
    assert store.state(Source.LAB_USAGE)[1]["time"] == 100.0  # the last answer stays
    assert store.health()["prometheus"]["degraded"] == (
        "lab-wide usage query failed: HTTP 503: Prometheus says unavailable: query queue full")
    assert store.remote.view().source.failing_since is None  # the hosts' readings went on
    prom.by_query[IDLE_Q] = (200, EMPTY)
    prom.asked.clear()
    collector.collect(104.0)  # tried again at the next reading, not 3 readings later
    assert IDLE_Q in prom.asked
    doc = store.state(Source.LAB_USAGE)[1]
    assert doc["time"] == 104.0 and all(u["idle_gpu_hours"] == 0 for u in doc["users"])
    assert "degraded" not in store.health()["prometheus"]


def test_the_dcgm_flavor_asks_no_usage(prom: Answers) -> None:
    store = Store("wall")
    collector = PrometheusCollector(store, PrometheusConfig(url=f"http://127.0.0.1:{prom.port}", flavor="dcgm"))
    collector.collect(time.time())
    assert not any("labwall_gpu_user" in q for q in prom.asked)
    assert store.state(Source.LAB_USAGE) is None


# -- the strip's choice ------------------------------------------------------------------------------
def test_the_strip_shows_the_lab_while_the_document_is_fresh_else_this_host() -> None:
    store = Store("wall")
    strip = UsageStrip(store.usage, store)
    now = time.time()
    assert strip.cells(now)["us.title"].text == TITLE and strip.cells(now)["us.none"].level == ""
    store.set_state(Source.LAB_USAGE, lab_usage_document(parse_vector(HOURS), parse_vector(IDLE), now, 60.0), now)
    cells = strip.cells(now + 1)
    assert cells["us.title"].text == LAB_TITLE
    assert [cells[f"us.{i}.n"].text for i in range(3)] == ["carol", "alice", "unknown"]
    assert [cells[f"us.{i}.h"].text for i in range(3)] == ["10 h", "2.0 h", "0.10 h"]
    assert [cells[f"us.{i}.i"].text for i in range(3)] == ["100 %", "10 %", "0 %"]
    assert [cells[f"us.{i}"].level for i in range(4)] == ["warn", "", "", "off"]  # carol: the idle mark
    assert cells["us.none"].level == "off"
    stale = strip.cells(now + 61)  # older than max_age_s: this host's (empty) week again
    assert stale["us.title"].text == TITLE and stale["us.none"].level == "" and "us.0.n" not in stale
    without_source = UsageStrip(store.usage, None)  # prometheus off: the document is never read
    assert without_source.cells(now + 1)["us.title"].text == TITLE
