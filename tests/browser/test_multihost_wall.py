"""The wall for many servers, end to end: a real Prometheus (Debian's binary) scraping labwall
instances with simulated GPUs, a fleet exporter with 32 hosts x 8 GPUs and a DCGM-style exporter
(both real prometheus-client HTTP servers on loopback), wall servers with the prometheus source,
and a real Chromium reading what the wall shows."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from browser_support import FULL_HD, open_wall
from playwright.sync_api import Browser, Page
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from prometheus_support import PrometheusServer
from support import ROOT, LabwallServer, free_port, wait_for

pytestmark = pytest.mark.browser
SCRAPE_S = 1.0
QUERY_S = 1.0
MIB = 1024**2
NODES = {"node-b": 2, "node-c": 3, "node-d": 4}  # host label -> simulated GPUs
RACK = [f"rack-{i:02d}" for i in range(1, 33)]
DGX = {"dgx-1": [(87, 66, 40000, 41559), (12, 41, 2000, 79559)], "dgx-2": [(55, 90, 80000, 1559)]}

ROWS_JS = """() => {
  const shown = (el) => getComputedStyle(el).display !== 'none';
  return [...document.querySelectorAll('.ov-row')].filter(shown).map((r) => ({
    name: r.querySelector('.ov-name').textContent, state: r.querySelector('.ov-state').textContent,
    down: r.classList.contains('down'), cpu: r.querySelector('.ov-v.cpu').textContent,
    mem: r.querySelector('.ov-v.mem').textContent,
    gpus: [...r.querySelectorAll('.ov-gpu')].filter(shown).map((g) => ({
      u: g.querySelector('.ov-u').textContent, t: g.querySelector('.ov-t').textContent,
      cls: g.className, mem: g.style.getPropertyValue('--p')})),
  }));
}"""


def rack_gpu(h: int, g: int) -> tuple[int, int, float]:
    """The fleet exporter's fixed values: utilisation %, temperature, memory used ratio."""
    return (h * 7 + g * 13) % 101, 35 + (h * 3 + g * 5) % 55, ((h + g) % 10) / 10


class FleetExporter(Collector):
    """labwall's /metrics contract for 32 hosts x 8 GPUs from one endpoint (the layout test); the
    hosts in `gone` stop being served, like servers that went down."""

    def __init__(self) -> None:
        self.gone: set[str] = set()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = {name: GaugeMetricFamily(f"labwall_{name}", name, labels=labels) for name, labels in (
            ("info", ["host", "version"]), ("gpu_info", ["host", "gpu", "uuid", "name"]),
            ("gpu_utilization_ratio", ["host", "gpu", "uuid"]), ("gpu_memory_used_bytes", ["host", "gpu", "uuid"]),
            ("gpu_memory_total_bytes", ["host", "gpu", "uuid"]), ("gpu_temperature_celsius", ["host", "gpu", "uuid"]),
            ("host_cpu_utilization_ratio", ["host"]), ("host_memory_used_bytes", ["host"]),
            ("host_memory_total_bytes", ["host"]))}
        for h, host in enumerate(RACK):
            if host in self.gone:
                continue
            families["info"].add_metric([host, "test"], 1)
            families["host_cpu_utilization_ratio"].add_metric([host], (h % 10) / 10)
            families["host_memory_used_bytes"].add_metric([host], 64 * 1024**3 * ((h + 3) % 10) / 10)
            families["host_memory_total_bytes"].add_metric([host], 64 * 1024**3)
            for g in range(8):
                util, temp, mem = rack_gpu(h, g)
                ids = [host, str(g), f"GPU-{h:02d}{g}"]
                families["gpu_info"].add_metric([*ids, "NVIDIA H100 80GB HBM3"], 1)
                families["gpu_utilization_ratio"].add_metric(ids, util / 100)
                families["gpu_memory_used_bytes"].add_metric(ids, 80 * 1024**3 * mem)
                families["gpu_memory_total_bytes"].add_metric(ids, 80 * 1024**3)
                families["gpu_temperature_celsius"].add_metric(ids, temp)
        yield from families.values()


class DcgmExporter(Collector):
    """DCGM-exporter's metric names and labels (its default counters), and node_exporter's CPU and
    memory series (CPU busy 25 %: the idle counter grows 0.75 s per second)."""

    def __init__(self) -> None:
        self.started = time.time()

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        labels = ["gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname", "DCGM_FI_DRIVER_VERSION"]
        names = {"util": "DCGM_FI_DEV_GPU_UTIL", "temp": "DCGM_FI_DEV_GPU_TEMP", "used": "DCGM_FI_DEV_FB_USED",
                 "free": "DCGM_FI_DEV_FB_FREE", "power": "DCGM_FI_DEV_POWER_USAGE"}
        families = {k: GaugeMetricFamily(n, n, labels=labels) for k, n in names.items()}
        cpu = CounterMetricFamily("node_cpu_seconds_total", "cpu", labels=["cpu", "mode", "instance"])
        total = GaugeMetricFamily("node_memory_MemTotal_bytes", "mem", labels=["instance"])
        available = GaugeMetricFamily("node_memory_MemAvailable_bytes", "mem", labels=["instance"])
        now = time.time()
        elapsed = 1000 + now - self.started
        for host, gpus in DGX.items():
            for g, (util, temp, used, free) in enumerate(gpus):
                ids = [str(g), f"GPU-{host}-{g}", f"00000000:0{g}:00.0", f"nvidia{g}", "NVIDIA A100-SXM4-80GB",
                       host, "550.54.15"]
                for key, value in (("util", util), ("temp", temp), ("used", used), ("free", free), ("power", 250)):
                    families[key].add_metric(ids, value)
            for c in range(2):
                # stamped with the time the value is for, so a loaded scrape's delay does not skew rate()
                cpu.add_metric([str(c), "idle", f"{host}:9100"], 0.75 * elapsed, timestamp=now)
                cpu.add_metric([str(c), "user", f"{host}:9100"], 0.25 * elapsed, timestamp=now)
            total.add_metric([f"{host}:9100"], 256 * 1024**3)
            available.add_metric([f"{host}:9100"], 192 * 1024**3)
        yield from (*families.values(), cpu, total, available)


def serve_exporter(collector: Collector) -> tuple[Any, int]:
    registry = CollectorRegistry()
    registry.register(collector)
    port = free_port()
    server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    return server, port


@dataclass
class Lab:
    prom: PrometheusServer
    wall: LabwallServer  # node-a: the wall with the prometheus source, scraped like the others
    nodes: dict[str, LabwallServer]
    dcgm_wall: LabwallServer  # flavor dcgm: the DCGM exporter's hosts
    rack_wall: LabwallServer  # the fleet exporter's 32 hosts
    fleet: FleetExporter


def wall_config(host: str, prom_url: str, selector: str, **extra: Any) -> dict[str, Any]:
    return {"host_label": host, "gpu": {"backend": "simulated", "simulated_count": 2},
            "prometheus": {"url": prom_url, "host_selector": selector, "interval_s": QUERY_S,
                           "timeout_s": 1.0, "range_every": 2, "lookback_s": 60, **extra}}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    work = tmp_path_factory.mktemp("multihost")
    fleet = FleetExporter()
    exporters = [serve_exporter(fleet), serve_exporter(DcgmExporter())]
    # node-b runs the demo trainer (its runs reach the wall through /metrics); the others only GPUs
    nodes = {h: LabwallServer(work, {"host_label": h, "gpu": {"backend": "simulated", "simulated_count": n}},
                              ["--demo"] if h == "node-b" else [])
             for h, n in NODES.items()}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    wall = LabwallServer(work, wall_config("node-a", url, "node-.*"), ["--demo"])
    others = [LabwallServer(work, wall_config("dgx-0", url, "dgx-.*", flavor="dcgm")),
              LabwallServer(work, wall_config("rack-01", url, "rack-.*"))]
    targets = [f"127.0.0.1:{s.port}" for s in (wall, *nodes.values())] + [f"127.0.0.1:{p}" for _, p in exporters]
    prom = PrometheusServer(work, targets, interval_s=SCRAPE_S)
    prom.port = port  # the wall's config names this port (the listen address is a command-line flag)
    try:
        for server in (*nodes.values(), wall, *others):  # all at once: start-up overlaps
            server.start(wait=False)
        prom.start()
        for server in (*nodes.values(), wall, *others):
            server.wait_ready()
        yield Lab(prom, wall, nodes, *others, fleet)
    finally:
        with contextlib.suppress(Exception):
            prom.stop()
        for server in (*nodes.values(), wall, *others):
            with contextlib.suppress(Exception):
                server.stop()
        for server, _ in exporters:
            server.shutdown()


def rows(page: Page) -> list[dict[str, Any]]:
    return page.evaluate(ROWS_JS)


def num(text: str) -> float:
    found = re.search(r"-?\d+(\.\d+)?", text)
    assert found, f"no number in {text!r}"
    return float(found.group())


def rows_match_nodes(page: Page, lab: Lab) -> bool:
    shown = {r["name"]: r for r in rows(page)}
    if sorted(shown) != ["node-a", "node-b", "node-c", "node-d"]:
        return False
    for name, server in [("node-a", lab.wall), *lab.nodes.items()]:
        snap = server.get("/api/snapshot").json()
        row = shown[name]
        assert len(row["gpus"]) == len(snap["gpus"]), (name, row)
        assert row["state"].startswith(f"{len(snap['gpus'])} GPUs"), row["state"]
        for tile, gpu in zip(row["gpus"], snap["gpus"], strict=True):
            # values pass node -> Prometheus -> wall within ~3 s; the simulated GPUs move slowly
            if abs(num(tile["u"]) - gpu["utilization_gpu_percent"]) > 6:
                return False
            if abs(num(tile["t"]) - gpu["temperature_celsius"]) > 3:
                return False
            mem = 100 * gpu["memory_used_bytes"] / gpu["memory_total_bytes"]
            if abs(num(tile["mem"]) - mem) > 3:
                return False
    return True


@pytest.fixture(scope="module")
def page(browser: Browser, lab: Lab) -> Iterator[Page]:
    wait_for(lambda: len(lab.wall.get("/api/snapshot").json()["hosts"]) == 4, 40, 0.3, what="4 hosts via Prometheus")
    page = open_wall(browser, lab.wall.url)
    yield page
    page.context.close()


def test_the_wall_shows_every_host_with_its_values(page: Page, lab: Lab) -> None:
    wait_for(lambda: rows_match_nodes(page, lab), 25, 0.3, what="host rows matching each node's /api/snapshot")
    assert page.text_content(".ov-count") == "4 / 4 up"
    assert "this server" in next(r["state"] for r in rows(page) if r["name"] == "node-a")
    # the runs panel lists this server's runs and other hosts' (from Prometheus), host first
    names = lambda: page.eval_on_selector_all(".run:not(.off) .r-name", "els => els.map(e => e.textContent)")  # noqa: E731
    wait_for(lambda: {n.split(" · ")[0] for n in names()} == {"node-a", "node-b"}, 30, 0.3,
             what="runs of node-a (local) and node-b (through Prometheus) in the runs panel")
    assert page.evaluate("() => document.documentElement.scrollHeight <= innerHeight")
    page.screenshot(path=str(ROOT / "docs" / "wall-multihost.png"))


def test_a_stopped_instance_is_greyed_within_two_scrape_intervals(page: Page, lab: Lab) -> None:
    wait_for(lambda: any(r["name"] == "node-d" and not r["down"] for r in rows(page)), 20, 0.2, what="node-d up")
    lab.nodes["node-d"].stop()
    stopped = time.monotonic()
    row = wait_for(lambda: next((r for r in rows(page) if r["name"] == "node-d" and r["down"]), None), 20, 0.1,
                   what="node-d greyed")
    took = time.monotonic() - stopped
    print(f"\nnode-d greyed {took:.2f} s after it stopped")
    # two scrape intervals + one query interval + one wall tick, and slack for a loaded machine
    assert took <= 2 * SCRAPE_S + QUERY_S + 1.0 + 2.5, took
    assert re.fullmatch(r"DOWN · last seen \d\d:\d\d:\d\d", row["state"]), row["state"]
    assert page.text_content(".ov-count") == "3 / 4 up"
    assert lab.wall.get("/api/snapshot").json()["hosts"][3]["up"] is False


def test_the_dcgm_flavor_shows_dcgm_exporter_gpus(browser: Browser, lab: Lab) -> None:
    page = open_wall(browser, lab.dcgm_wall.url)
    try:
        def shown() -> bool:
            found = {r["name"]: r for r in rows(page)}
            if sorted(found) != ["dgx-1", "dgx-2"] or found["dgx-1"]["cpu"] == "n/a":
                return False
            for host, gpus in DGX.items():
                tiles = found[host]["gpus"]
                assert [(num(t["u"]), num(t["t"])) for t in tiles] == [(u, t) for u, t, _, _ in gpus], tiles
                assert [round(num(t["mem"])) for t in tiles] == [round(100 * u / (u + f)) for _, _, u, f in gpus]
                assert abs(num(found[host]["cpu"]) - 25) <= 2, found[host]["cpu"]  # node_exporter irate
                assert num(found[host]["mem"]) == 25  # (256 - 192) / 256 GiB
            return True
        wait_for(shown, 30, 0.3, what="the DCGM hosts with the exporter's values")
        assert page.eval_on_selector(".ov-row:nth-child(2) .ov-t", "e => e.className").endswith("crit")  # 90 °C
    finally:
        page.context.close()


def test_32_hosts_of_8_gpus_fit_one_1080p_screen(browser: Browser, lab: Lab) -> None:
    page = open_wall(browser, lab.rack_wall.url, FULL_HD)
    try:
        wait_for(lambda: len(rows(page)) == 32 and all(len(r["gpus"]) == 8 for r in rows(page)), 30, 0.3,
                 what="32 host rows of 8 GPUs")
        found = {r["name"]: r for r in rows(page)}
        for h, host in enumerate(RACK):
            assert [num(t["u"]) for t in found[host]["gpus"]] == [rack_gpu(h, g)[0] for g in range(8)], host
        layout = page.evaluate("""() => {
          const box = (e) => e.getBoundingClientRect();
          const all = (sel) => [...document.querySelectorAll(sel)];
          const px = (sel) => Math.min(...all(sel).map((e) => parseFloat(getComputedStyle(e).fontSize)));
          const clipped = all('.ov-u, .ov-t, .ov-name').filter((e) => e.scrollWidth > e.clientWidth + 1).length;
          const outside = [...document.querySelectorAll('.ov-gpu, .ov-row')].filter((e) => {
            const b = box(e); return b.bottom > innerHeight || b.right > innerWidth || b.height < 20; }).length;
          return {scroll: [document.documentElement.scrollWidth, document.documentElement.scrollHeight],
                  view: [innerWidth, innerHeight], util: px('.ov-u'), temp: px('.ov-t'), name: px('.ov-name'),
                  tile: box(document.querySelector('.ov-gpu')), clipped, outside};
        }""")
        print(f"\n32 x 8 layout: {layout}")
        assert layout["scroll"] == layout["view"], layout  # no scrollbar
        assert layout["outside"] == 0 and layout["clipped"] == 0, layout
        assert layout["util"] >= 16 and layout["name"] >= 16 and layout["temp"] >= 10, layout
        lab.fleet.gone.add("rack-32")  # a server goes down: its row greys, "last seen" fits the row
        row = wait_for(lambda: next((r for r in rows(page) if r["name"] == "rack-32" and r["down"]), None), 15, 0.2,
                       what="rack-32 greyed")
        assert re.fullmatch(r"DOWN · last seen \d\d:\d\d:\d\d", row["state"]), row["state"]
        fits = page.evaluate("""() => {
          const row = [...document.querySelectorAll('.ov-row.down')][0];
          const text = document.createRange();
          text.selectNodeContents(row.querySelector('.ov-state'));
          return text.getBoundingClientRect().right <= row.querySelector('.ov-spark').getBoundingClientRect().left;
        }""")
        assert fits, "the DOWN text runs into the row's sparkline"
        page.screenshot(path=str(ROOT / "docs" / "wall-multihost-32.png"))
    finally:
        page.context.close()


def test_prometheus_stopped_the_wall_stays_up_shows_stale_and_recovers(page: Page, lab: Lab) -> None:
    wait_for(lambda: page.get_attribute(".ov", "class") and "stale" not in page.get_attribute(".ov", "class"), 10)
    lab.prom.stop()
    wait_for(lambda: "Prometheus not answering since" in (page.text_content(".ov-src") or ""), 15, 0.2,
             what="the stale notice")
    assert re.match(r"Prometheus not answering since \d\d:\d\d:\d\d: cannot reach", page.text_content(".ov-src"))
    assert "stale" in page.get_attribute(".ov", "class")
    assert len(rows(page)) == 4  # the last good data stays
    clock = page.text_content(".clock")
    wait_for(lambda: page.text_content(".clock") != clock, 5, 0.1, what="the wall to keep ticking")
    health = lab.wall.get("/healthz").json()
    assert health["status"] == "degraded"
    assert any(r.startswith("prometheus: unavailable — Prometheus not answering since") for r in health["reasons"])
    lab.prom.start()
    wait_for(lambda: "stale" not in page.get_attribute(".ov", "class"), 30, 0.2, what="recovery after restart")
    assert page.text_content(".ov-src").startswith("via Prometheus")
    wait_for(lambda: lab.wall.get("/healthz").json()["collectors"]["prometheus"]["state"] == "ok", 10, 0.2)
