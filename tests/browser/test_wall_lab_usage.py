"""Lab-wide GPU-hours on the wall, end to end: a real Prometheus (Debian's binary) scrapes two hosts'
per-user counters (labwall's /metrics names and labels, served by real prometheus-client HTTP servers
on loopback), a wall server with the prometheus source sums them with `increase(...[7d])`, and its
header strip in Chromium shows the lab's users, titled "lab-wide"; with Prometheus gone long enough
the strip falls back to this host's week.

The counters start at 0 and jump once Prometheus has seen the 0, so `increase()` over the window is
the jump times Prometheus' extrapolation factor (>= 1, a few % with a 0.5 s scrape): the strip's
hours lie between the exact sum and a little above it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from browser_support import FULL_HD, open_wall
from playwright.sync_api import Browser, Page
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from prometheus_support import PrometheusServer
from support import LabwallServer, free_port, wait_for

from monitor.model import metric_names as m
from monitor.wall.usage_strip import IDLE_MARK, LAB_TITLE, TITLE

pytestmark = pytest.mark.browser
SCRAPE_S = 0.5
# host -> user -> (GPU-hours, idle GPU-hours) the counters jump to
HOSTS = {"node-b": {"alice": (20.0, 2.0), "bob": (1.0, 0.9)}, "node-c": {"alice": (16.0, 0.0), "carol": (8.0, 0.0)}}
LAB = {"alice": (36.0, 2.0), "carol": (8.0, 0.0), "bob": (1.0, 0.9)}  # largest first
STRIP_JS = """() => {
  const slots = [...document.querySelectorAll('.wall .hdr .us-u')].filter(s => !s.classList.contains('off'));
  return {title: document.querySelector('.wall .usage .kpi-l').textContent,
          users: slots.map(s => ({name: s.querySelector('.us-n').textContent,
                                  hours: s.querySelector('.us-h').textContent,
                                  idle: s.querySelector('.us-i').textContent, marked: s.classList.contains('warn')}))};
}"""
LAYOUT_JS = """() => {
  const de = document.documentElement, box = (sel) => document.querySelector(sel).getBoundingClientRect();
  const title = document.querySelector('.wall .usage .kpi-l');
  return {scroll: [de.scrollWidth, de.scrollHeight], view: [innerWidth, innerHeight],
          titleFits: title.scrollWidth <= title.clientWidth + 1,
          usageBeforeKpis: box('.wall .usage').right <= box('.wall .kpis').left + 0.5};
}"""


class UsageCounters(Collector):
    """One host's `labwall_gpu_user_*_seconds_total{host,user}`: 0 until `jumped`, then HOSTS' values."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.jumped = False

    def collect(self) -> Iterator[CounterMetricFamily]:
        labels = [m.HOST_LABEL, "user"]
        hours = CounterMetricFamily(m.GPU_USER_SECONDS.name.removesuffix("_total"), "GPU-seconds", labels=labels)
        idle = CounterMetricFamily(m.GPU_USER_IDLE_SECONDS.name.removesuffix("_total"), "idle", labels=labels)
        for user, (h, i) in HOSTS[self.host].items():
            hours.add_metric([self.host, user], 3600 * h if self.jumped else 0.0)
            idle.add_metric([self.host, user], 3600 * i if self.jumped else 0.0)
        yield from (hours, idle)


@dataclass
class UsageLab:
    prom: PrometheusServer
    wall: LabwallServer
    counters: list[UsageCounters]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UsageLab]:
    work = tmp_path_factory.mktemp("lab-usage")
    counters, exporters, ports = [UsageCounters(h) for h in HOSTS], [], []
    for collector in counters:
        registry = CollectorRegistry()
        registry.register(collector)
        ports.append(free_port())
        exporters.append(start_http_server(ports[-1], addr="127.0.0.1", registry=registry)[0])
    prom = PrometheusServer(work, [f"127.0.0.1:{p}" for p in ports], interval_s=SCRAPE_S)
    port = free_port()
    prom.port = port  # the wall's config names it before Prometheus starts
    wall = LabwallServer(work, {"host_label": "node-a", "gpu": {"backend": "simulated", "simulated_count": 2},
                                "prometheus": {"url": f"http://127.0.0.1:{port}", "host_selector": "node-.*",
                                               "interval_s": 0.5, "timeout_s": 1.0, "usage_every": 1}})
    try:
        wall.start(wait=False)
        prom.start()
        wall.wait_ready()
        yield UsageLab(prom, wall, counters)
    finally:
        with contextlib.suppress(Exception):
            prom.stop()
        with contextlib.suppress(Exception):
            wall.stop()
        for server in exporters:
            server.shutdown()


def hours_of(text: str) -> float:
    found = re.fullmatch(r"(\d+(?:\.\d+)?) h", text)
    assert found, f"not an hours text: {text!r}"
    return float(found.group(1))


def percent_of(text: str) -> int:
    found = re.fullmatch(r"(\d+) %", text)
    assert found, f"not an idle share: {text!r}"
    return int(found.group(1))


def strip(page: Page) -> dict[str, Any]:
    return page.evaluate(STRIP_JS)


def test_two_hosts_counters_add_up_on_the_lab_wide_strip_and_fall_back_without_prometheus(
        browser: Browser, lab: UsageLab) -> None:
    # Prometheus must hold a 0 of every series before the jump, so increase() sees all of it.
    series = f'{m.GPU_USER_SECONDS.name}{{host=~"node-.*"}}'
    wait_for(lambda: len(lab.prom.query(f"{series} == 0")) == 4, 30, 0.2, what="Prometheus scraping the zeros")
    page = open_wall(browser, lab.wall.url, FULL_HD)
    try:
        wait_for(lambda: strip(page)["title"] == LAB_TITLE, 20, 0.2, what="the strip titled lab-wide")
        for counters in lab.counters:
            counters.jumped = True

        def lab_wide() -> dict[str, Any] | None:
            shown = strip(page)
            names = [u["name"] for u in shown["users"]]
            if names != list(LAB) or shown["title"] != LAB_TITLE:
                return None
            return shown if all(hours_of(u["hours"]) >= LAB[u["name"]][0] * 0.99 for u in shown["users"]) else None

        shown = wait_for(lab_wide, 30, 0.2, what=f"the strip showing {list(LAB)} summed over node-b and node-c")
        print(f"\nlab-wide strip: {shown}")
        layout = page.evaluate(LAYOUT_JS)
        assert layout["scroll"] == layout["view"] and layout["titleFits"] and layout["usageBeforeKpis"], layout
        for user in shown["users"]:
            hours, idle = LAB[user["name"]]
            # the exact sum, times Prometheus' extrapolation (one scrape interval over a few seconds)
            assert hours * 0.99 <= hours_of(user["hours"]) <= hours * 1.5, user
            assert abs(percent_of(user["idle"]) - round(100 * idle / hours)) <= 3, user
            assert user["marked"] == (idle / hours >= IDLE_MARK), user
        assert hours_of(shown["users"][0]["hours"]) > max(HOSTS["node-b"]["alice"][0], HOSTS["node-c"]["alice"][0])
        # both usage queries answered: the prometheus source reports no problem
        assert "degraded" not in lab.wall.get("/healthz").json()["collectors"]["prometheus"]

        lab.prom.stop()  # no answers: the last one stays shown until it is older than its max age
        assert strip(page)["title"] == LAB_TITLE
        wait_for(lambda: strip(page)["title"] == TITLE, 90, 0.5, what="the strip back on this host's week")
        assert "carol" not in [u["name"] for u in strip(page)["users"]]
    finally:
        page.context.close()
