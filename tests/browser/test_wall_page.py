"""The wall in a real Chromium, against a real server in demo mode with 8 simulated GPUs."""

from __future__ import annotations

import re
from typing import Any

import pytest
from browser_support import FULL_HD, open_wall
from playwright.sync_api import Browser, Page
from support import ROOT, LabwallServer, wait_for

pytestmark = pytest.mark.browser
GIB = 1024**3
NICEGUI_OWN_LISTENERS = {"sub_pages_open", "sub_pages_navigate"}

TILES_JS = """() => [...document.querySelectorAll('.wall .tile')].map((t) => {
  const text = (sel) => t.querySelector(sel)?.textContent ?? null;
  const shown = (el) => getComputedStyle(el).display !== 'none';
  return {
    idx: text('.t-idx'), name: text('.t-name'), util: text('.m-v.big'), mem: text('.memv'), total: text('.m-t'),
    temp: t.querySelectorAll('.stat .s-v')[0].textContent, power: text('.s-bar'),
    procs: [...t.querySelectorAll('.proc')].filter(shown).map((p) =>
      [p.querySelector('.p-user').textContent, p.querySelector('.p-cmd').textContent,
       p.querySelector('.p-mem').textContent]),
  };
})"""

HOST_JS = """() => ({
  cpu: document.querySelector('.hostp .m-v.big').textContent,
  cores: document.querySelector('.hostp .h-info').textContent,
  mem: document.querySelector('.hostp .m-v.memv').textContent + ' ' + document.querySelector('.hostp .m-t').textContent,
  heat: document.querySelectorAll('.hostp .heat-cell').length,
})"""


@pytest.fixture(scope="module")
def page(browser: Browser, demo_server: LabwallServer) -> Page:
    page = open_wall(browser, demo_server.url)
    yield page
    page.context.close()


def number(text: str) -> float:
    found = re.search(r"-?\d+(\.\d+)?", text)
    assert found, f"no number in {text!r}"
    return float(found.group())


def close(shown: str, values: list[Any], tolerance: float) -> bool:
    """`shown` (page text) is within `tolerance` of one of the snapshot values read around it."""
    return any(v is not None and abs(number(shown) - v) <= tolerance for v in values)


def tiles_match_snapshot(page: Page, server: LabwallServer) -> bool:
    before = server.get("/api/snapshot").json()["gpus"]
    tiles = page.evaluate(TILES_JS)
    after = server.get("/api/snapshot").json()["gpus"]
    assert len(tiles) == len(after) == 8
    for tile, g0, g1 in zip(tiles, before, after, strict=True):
        # what does not move must be exact
        assert tile["idx"] == f"GPU {g1['index']}"
        assert tile["name"] == g1["name"].removeprefix("NVIDIA ")
        assert number(tile["total"]) == round(g1["memory_total_bytes"] / GIB)
        procs = sorted(g1["processes"], key=lambda q: q["gpu_memory_bytes"] or 0, reverse=True)[:3]
        assert [p[0] for p in tile["procs"]] == [q["user"] for q in procs]
        # a process the run join placed reads "· run · step N · metric v" (the demo lab's trainers), others
        # their command; the join may land between the two reads, so a mismatch is read again
        expected = [f"· {q['run_name']}" if q.get("run_name") else q["command"] for q in procs]
        if not all(p[1].startswith(e) for p, e in zip(tile["procs"], expected, strict=True)):
            return False
        assert [number(p[2]) for p in tile["procs"]] == [round(q["gpu_memory_bytes"] / GIB, 1) for q in procs]
        # what moves must match one of the readings around the page read (one tick apart at most)
        if not (close(tile["util"], [g0["utilization_gpu_percent"], g1["utilization_gpu_percent"]], 3)
                and close(tile["mem"], [g0["memory_used_bytes"] / GIB, g1["memory_used_bytes"] / GIB], 0.11)
                and close(tile["temp"], [g0["temperature_celsius"], g1["temperature_celsius"]], 1)
                and close(tile["power"], [g0["power_draw_watts"], g1["power_draw_watts"]], 8)):
            return False
        assert number(tile["power"].split("/")[1]) == round(g1["power_limit_watts"])
    return True


def test_gpu_tiles_show_the_snapshot(page: Page, demo_server: LabwallServer) -> None:
    wait_for(lambda: tiles_match_snapshot(page, demo_server), timeout=10, interval=0.2,
             what="the 8 tiles to show /api/snapshot's values")
    assert page.text_content(".badge.sim") == "SIMULATED DATA"


def test_host_panel_shows_the_snapshot(page: Page, demo_server: LabwallServer) -> None:
    system = demo_server.get("/api/snapshot").json()["system"]
    host = page.evaluate(HOST_JS)
    assert f"{system['cpu_count']} cores" in host["cores"]
    assert host["heat"] == len(system["cpu_per_core_percent"])
    assert number(host["mem"].split("/")[1]) == round(system["memory_total_bytes"] / GIB, 1)

    def cpu_matches() -> bool:
        before = demo_server.get("/api/snapshot").json()["system"]["cpu_percent"]
        shown = page.evaluate(HOST_JS)["cpu"]
        after = demo_server.get("/api/snapshot").json()["system"]["cpu_percent"]
        return close(shown, [before, after], 1)

    wait_for(cpu_matches, timeout=10, interval=0.2, what="the CPU % to match /api/snapshot")


def test_charts_gain_points(page: Page) -> None:
    count = "() => [...document.querySelectorAll('.wall .c-plot .js-plotly-plot')].map(e => e.data[0].x.length)"
    first = page.evaluate(count)
    assert len(first) == 9  # 8 GPU tiles + the host chart
    page.wait_for_function(f"(first) => ({count})().every((n, i) => n >= first[i] + 2)", arg=first, timeout=10_000)


def test_two_browsers_show_the_same_wall(browser: Browser, page: Page, demo_server: LabwallServer) -> None:
    other = open_wall(browser, demo_server.url)
    try:
        # both pages are phase-locked to the same shared tick: at some instant they show identical text
        same = "() => document.querySelector('.gpus').innerText + document.querySelector('.hostp').innerText"
        wait_for(lambda: page.evaluate(same) == other.evaluate(same), timeout=10, interval=0.1,
                 what="two browsers to show the same GPU and host values")
        assert page.evaluate(TILES_JS)[0]["name"] == other.evaluate(TILES_JS)[0]["name"]
    finally:
        other.context.close()


def test_there_is_nothing_to_click_or_type(page: Page) -> None:
    found = page.evaluate("""() => [...document.querySelectorAll(
        'input, textarea, select, button, [contenteditable], [role=button], [tabindex]:not([tabindex="-1"])'
      )].map(e => e.outerHTML.slice(0, 80))""")
    assert found == []
    # plain links for a laptop's click (a run card, the runs title, a GPU tile, the usage strip) to this server
    hrefs = page.evaluate("() => [...document.querySelectorAll('a[href]')].map(e => e.getAttribute('href'))")
    assert all(re.fullmatch(r"/runs|/usage|/run/[A-Za-z0-9_.-]+|/gpu/[^/]+/\d+", h) for h in hrefs), hrefs
    # and no element of the wall listens for a browser event on the server; the only listeners are
    # NiceGUI's own sub-page navigation on the page layout (no sub pages exist here)
    listeners = page.evaluate("() => Object.values(mounted_app.elements).flatMap(e => e.events || [])")
    assert {e["type"] for e in listeners} <= NICEGUI_OWN_LISTENERS


def fits(page: Page) -> dict[str, Any]:
    return page.evaluate("""() => {
      const de = document.documentElement, vw = innerWidth, vh = innerHeight;
      const boxes = [...document.querySelectorAll('.wall .hdr, .wall .tile, .wall .panel')];
      const outside = boxes.filter(b => { const r = b.getBoundingClientRect();
        return r.left < 0 || r.top < 0 || r.right > vw + 0.5 || r.bottom > vh + 0.5; }).map(b => b.className);
      // a tile or panel whose content is taller than itself would be cut off
      const clipped = [...document.querySelectorAll('.wall .tile, .wall .hostp, .wall .runs')]
        .filter(b => b.scrollHeight > b.clientHeight + 1).map(b => b.className);
      return {scrollW: de.scrollWidth, scrollH: de.scrollHeight, bodyW: document.body.scrollWidth,
              bodyH: document.body.scrollHeight, vw, vh, outside, clipped, tiles: boxes.length};
    }""")


@pytest.mark.parametrize("size", [(1920, 1080), (3840, 2160)], ids=["1080p", "4k"])
def test_no_scrollbars_with_8_gpus(browser: Browser, demo_server: LabwallServer, size: tuple[int, int]) -> None:
    page = open_wall(browser, demo_server.url, {"width": size[0], "height": size[1]})
    try:
        found = fits(page)
        assert found["tiles"] == 8 + 4  # 8 GPU tiles, the header, host, runs and events panels
        assert found["scrollW"] <= found["vw"] and found["scrollH"] <= found["vh"], found
        assert found["bodyW"] <= found["vw"] and found["bodyH"] <= found["vh"], found
        assert found["outside"] == [] and found["clipped"] == [], found
    finally:
        page.context.close()


def test_save_the_readme_screenshot(page: Page) -> None:
    """docs/wall-1920x1080.png: the wall in demo mode, 8 GPUs, after the charts have some history."""
    assert page.viewport_size == FULL_HD
    page.wait_for_function("() => document.querySelector('.wall .js-plotly-plot').data[0].x.length >= 20",
                           timeout=30_000)
    target = ROOT / "docs" / "wall-1920x1080.png"
    target.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(target))
    assert target.stat().st_size > 50_000
