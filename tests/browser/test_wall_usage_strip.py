"""The header's "GPU-hours this week" strip in Chromium at 1920x1080, against /api/usage on the same
real server: simulated GPUs from tests/data/usage_scenario.json (carol holds GPU 1 at 0 %)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from browser_support import FULL_HD, open_wall, start_server
from playwright.sync_api import Browser, Page
from support import ROOT, LabwallServer, wait_for

from monitor.wall.usage_strip import IDLE_MARK, hours_text, idle_share, idle_text

pytestmark = pytest.mark.browser
SCENARIO = ROOT / "tests" / "data" / "usage_scenario.json"
STRIP_JS = """() => {
  const slots = [...document.querySelectorAll('.wall .hdr .us-u')].filter(s => !s.classList.contains('off'));
  const row = document.querySelector('.wall .us-row').getBoundingClientRect();
  // entries that do not fit wrap below the row's height, out of sight: only the first line counts
  return slots.filter(s => s.getBoundingClientRect().bottom <= row.bottom + 0.5).map(s => ({
    name: s.querySelector('.us-n').textContent, hours: s.querySelector('.us-h').textContent,
    idle: s.querySelector('.us-i').textContent, marked: s.classList.contains('warn')}));
}"""
LAYOUT_JS = """() => {
  const de = document.documentElement, rem = parseFloat(getComputedStyle(de).fontSize);
  const hdr = document.querySelector('.wall .hdr').getBoundingClientRect();
  const usage = document.querySelector('.wall .usage').getBoundingClientRect();
  const kpis = document.querySelector('.wall .kpis').getBoundingClientRect();
  const tiles = [...document.querySelectorAll('.wall .tile')].map(t => t.getBoundingClientRect().top);
  return {scrollW: de.scrollWidth, scrollH: de.scrollHeight, vw: innerWidth, vh: innerHeight,
          hdrH: hdr.height / rem, usageInside: usage.top >= hdr.top - 0.5 && usage.bottom <= hdr.bottom + 0.5,
          usageBeforeKpis: usage.right <= kpis.left + 0.5, tileTop: Math.min(...tiles), hdrBottom: hdr.bottom};
}"""


@pytest.fixture(scope="module")
def usage_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabwallServer]:
    config = {"gpu": {"backend": "simulated", "simulated_scenario": str(SCENARIO)}}
    server = start_server(tmp_path_factory.mktemp("usage-wall"), config)
    wait_for(lambda: server.get("/api/usage").json()["rows"], timeout=100, interval=0.5,
             what="the first closed usage minute")
    yield server
    server.stop()


def expected(server: LabwallServer, count: int) -> list[dict[str, Any]]:
    rows = [r for r in server.get("/api/usage?by=user").json()["rows"] if r["gpu_hours"] > 0][:count]
    return [{"name": r["key"], "hours": hours_text(r["gpu_hours"]), "idle": idle_text(idle_share(r)),
             "marked": idle_share(r) >= IDLE_MARK} for r in rows]


def test_the_strip_shows_the_top_users_of_api_usage_and_marks_the_idle_holder(
        browser: Browser, usage_server: LabwallServer) -> None:
    page: Page = open_wall(browser, usage_server.url, FULL_HD)
    try:
        def same() -> list[dict[str, Any]] | None:
            shown = page.evaluate(STRIP_JS)
            return shown if shown and shown == expected(usage_server, len(shown)) else None

        shown = wait_for(same, timeout=30, interval=0.5, what="the strip showing /api/usage's numbers")
        assert len(shown) >= 2
        carol = [s for s in shown if s["name"] == "carol"]
        assert carol and carol[0]["marked"] and carol[0]["idle"] == "100 %"
        assert not any(s["marked"] for s in shown if s["name"] in ("alice", "dave", "frank"))
        layout = page.evaluate(LAYOUT_JS)
        assert layout["scrollW"] <= layout["vw"] and layout["scrollH"] <= layout["vh"], layout
        assert layout["hdrH"] == pytest.approx(3.6, abs=0.01)  # the header keeps its height: tiles lose nothing
        assert layout["usageInside"] and layout["usageBeforeKpis"], layout
        assert layout["tileTop"] > layout["hdrBottom"], layout
    finally:
        page.context.close()
