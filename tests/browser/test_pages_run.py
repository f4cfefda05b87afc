"""The drill-down pages in a real Chromium: /run/{id} (live, compare, per-viewer smoothing and zoom),
/runs, the readable 404 pages, the wall's links, every page at four sizes, hostile text."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import assert_payloads_inert, start_server
from playwright.sync_api import Browser, Page
from runs_support import Writer
from support import ROOT, LabwallServer, wait_for

pytestmark = pytest.mark.browser
XSS = '<img src=x onerror="window.__xss=1">{{ 7*7 }}'
XSS_NAME = "<b onmouseover=window.__xss=1>x"  # a directory name: no slash
PARAMS = {"lr": 0.0003, "optim": {"name": "adamw"}, XSS: "<script>window.__xss=1</script>"}
SIZES = {"phone": (390, 844), "laptop": (1366, 768), "1080p": (1920, 1080), "4k": (3840, 2160)}


def lines(start: int, stop: int, k: float = 1.0) -> list[dict]:
    return [{"step": s, "loss": k * 2 / math.sqrt(s), "eval/acc": 1 - 1 / math.sqrt(s), "lr": 1e-3}
            for s in range(start, stop)]


class Lab:
    def __init__(self, server: LabwallServer, writer: Writer, root: Path) -> None:
        self.server, self.writer, self.root = server, writer, root

    def run_id(self, name: str) -> str:
        return next(r["id"] for r in self.server.get("/api/runs").json() if r["name"] == name)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    work = tmp_path_factory.mktemp("pages")
    root = work / "runs"
    writer = Writer()
    config_line = {"event": "config", **PARAMS}  # hyperparameters as a JSONL run logs them (the real reader)
    for name, k in (("a", 1.0), ("b", 1.3), ("c", 0.8)):
        writer.mkdir(root / "exp" / name)
        writer.lines(root / "exp" / name / "metrics.jsonl", ([config_line] if name == "a" else []) + lines(1, 400, k))
    writer.mkdir(root / XSS_NAME)
    writer.lines(root / XSS_NAME / "metrics.jsonl", [config_line, *({"step": s, XSS: 1.0 / s} for s in range(1, 50))])
    config = {"runs": {"roots": [str(root)]}, "gpu": {"simulated_count": 2}, "host_label": "test-host"}
    server = start_server(work, config, ["--demo"])
    wait_for(lambda: {"exp/a", "exp/b", "exp/c", XSS_NAME} <= {r["name"] for r in server.get("/api/runs").json()},
             15, what="the test runs")
    yield Lab(server, writer, root)
    writer.close()
    server.stop()


def open_page(browser: Browser, url: str, size: tuple[int, int] = (1366, 768)) -> Page:
    page = browser.new_context(viewport={"width": size[0], "height": size[1]}).new_page()
    page.goto(url)
    page.wait_for_function("() => document.querySelector('.lw-page, .wall') !== null && "
                           "[...document.querySelectorAll('.js-plotly-plot')].every(e => e._fullLayout)")
    return page


def points(page: Page, trace: int = 0) -> list[int]:
    return page.evaluate(f"() => [...document.querySelectorAll('.js-plotly-plot')].map(e => e.data[{trace}].x.length)")


def test_run_page_shows_the_run_and_streams_new_points(browser: Browser, lab: Lab) -> None:
    page = open_page(browser, f"{lab.server.url}/run/{lab.run_id('exp/a')}")
    try:
        assert page.text_content(".rp-name") == "exp/a"
        assert page.text_content(".lw-badge") == "RUNNING"
        assert "step 399" in page.text_content(".rp-step")
        assert page.text_content(".lw-host") == "test-host" and page.text_content(".lw-live .pill") == "LIVE"
        assert page.get_attribute(".lw-back", "href") == "/"
        titles = page.eval_on_selector_all(".rp-chart-t", "els => els.map(e => e.textContent)")
        assert titles == ["loss", "eval/acc", "lr"]  # train, eval, other
        wait_for(lambda: "0.0003" in page.inner_text(".rp-params") and "adamw" in page.inner_text(".rp-params"),
                 10, what="the hyperparameters")
        assert "started" in page.inner_text(".rp-history")
        before = points(page)
        assert before == [399, 399, 399]
        lab.writer.lines(lab.root / "exp" / "a" / "metrics.jsonl", lines(400, 405))
        page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].every(e => e.data[0].x.length"
                               " === 404 && e.data[1].x.length === 404)", timeout=10_000)
        assert "step 404" in page.text_content(".rp-step")
    finally:
        page.context.close()


def test_compare_url_overlays_other_runs_and_offers_siblings(browser: Browser, lab: Lab) -> None:
    a, b, c = (lab.run_id(n) for n in ("exp/a", "exp/b", "exp/c"))
    page = open_page(browser, f"{lab.server.url}/run/{a}?compare={b},nope")
    try:
        traces = "() => [...document.querySelectorAll('.js-plotly-plot')].map(e => e.data.length)"
        assert page.evaluate(traces) == [4] * 3
        legend = page.inner_text(".rp-legend")
        assert "exp/a (this run)" in legend and "exp/b" in legend
        assert "nope" in page.inner_text(".rp-unknown")
        hrefs = page.eval_on_selector_all(".rp-links a", "els => els.map(e => e.getAttribute('href'))")
        assert f"/run/{a}?compare={b},{c}" in hrefs
        assert page.evaluate("(n) => document.querySelector('.js-plotly-plot').data[2].x.length") == 399
    finally:
        page.context.close()


def test_unknown_ids_answer_a_readable_404(lab: Lab) -> None:
    for path, says in (("/run/no-such-run", "No such run"), ("/run/%3Cscript%3E", "No such run"),
                       ("/gpu/test-host/3", "No such GPU"), ("/gpu/other-host/0", "No such GPU")):
        answer = lab.server.get(path)
        assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
        assert says in answer.text and 'href="/"' in answer.text and "<script>" not in answer.text


def test_smoothing_and_zoom_stay_with_one_viewer(browser: Browser, lab: Lab) -> None:
    url = f"{lab.server.url}/run/{lab.run_id('exp/b')}"
    one, other = open_page(browser, url), open_page(browser, url)
    smooth = "() => document.querySelector('.js-plotly-plot').data[1].y.slice(-5)"
    try:
        before = other.evaluate(smooth)
        box = one.locator(".rp-smooth").bounding_box()
        assert box is not None
        one.mouse.click(box["x"] + 1, box["y"] + box["height"] / 2)  # weight 0: the smoothed line is the raw one
        wait_for(lambda: one.text_content(".rp-smooth-t") == "smoothing 0.00", 10, what="one viewer's smoothing")
        one.wait_for_function("(b) => JSON.stringify(document.querySelector('.js-plotly-plot').data[1].y.slice(-5))"
                              " !== JSON.stringify(b)", arg=before, timeout=10_000)
        one.evaluate("() => Plotly.relayout(document.querySelector('.js-plotly-plot'), {'xaxis.range': [10, 20]})")
        assert other.evaluate(smooth) == before and other.text_content(".rp-smooth-t") == "smoothing 0.60"
        assert other.evaluate("() => document.querySelector('.js-plotly-plot').layout.xaxis.autorange") is not False
        assert one.evaluate("() => document.querySelector('.js-plotly-plot').layout.xaxis.range") == [10, 20]
    finally:
        one.context.close()
        other.context.close()


def test_runs_page_lists_filters_and_links(browser: Browser, lab: Lab) -> None:
    page = open_page(browser, f"{lab.server.url}/runs?name=exp/")
    try:
        names = page.eval_on_selector_all(".rl-name", "els => els.map(e => e.textContent)")
        assert sorted(names) == ["exp/a", "exp/b", "exp/c"]
        assert page.get_attribute(".rl-name", "href").startswith("/run/exp-")
        assert page.eval_on_selector_all(".rl-spark polyline", "els => els.length") == 3
        page.fill("input[name=name]", "exp/c")
        page.click("button[type=submit]")
        page.wait_for_url("**/runs?*name=exp%2Fc*")
        assert page.eval_on_selector_all(".rl-name", "els => els.map(e => e.textContent)") == ["exp/c"]
    finally:
        page.context.close()


def test_the_wall_links_to_the_pages(browser: Browser, lab: Lab) -> None:
    page = open_page(browser, lab.server.url + "/")
    try:
        wait_for(lambda: page.eval_on_selector_all("a.run[href]", "els => els.length") >= 3, 10, what="run links")
        hrefs = set(page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))"))
        assert "/runs" in hrefs and "/gpu/test-host/0" in hrefs and f"/run/{lab.run_id('exp/a')}" in hrefs
        listeners = page.evaluate("() => Object.values(mounted_app.elements).flatMap(e => e.events || [])")
        assert {e["type"] for e in listeners} <= {"sub_pages_open", "sub_pages_navigate"}
    finally:
        page.context.close()


FIT_JS = """() => {
  const overlaps = [...document.querySelectorAll('.run:not(.off)')].filter(c => {
    const n = c.querySelector('.r-name').getBoundingClientRect();
    const b = c.querySelector('.r-badge').getBoundingClientRect();
    return n.right > b.left + 0.5 && n.bottom > b.top && b.bottom > n.top; }).length;
  const small = [...document.querySelectorAll('.r-name, .r-step, .rp-name, .rl-name, .lw-title, .rp-chart-t, .title')]
    .filter(e => e.offsetParent !== null && parseFloat(getComputedStyle(e).fontSize) < 9).map(e => e.className);
  return {scrollW: document.documentElement.scrollWidth, vw: innerWidth, overlaps, small};
}"""


@pytest.mark.parametrize("size", list(SIZES.values()), ids=list(SIZES))
def test_every_page_fits_every_size(browser: Browser, lab: Lab, size: tuple[int, int]) -> None:
    a, b = lab.run_id("exp/a"), lab.run_id("exp/b")
    for path in ("/", f"/run/{a}?compare={b}", "/runs"):
        page = open_page(browser, lab.server.url + path, size)
        try:
            if path == "/":
                page.wait_for_function("() => document.querySelectorAll('.run:not(.off)').length >= 3")
            found = page.evaluate(FIT_JS)
            assert found["scrollW"] <= found["vw"], (path, found)
            assert found["overlaps"] == 0 and found["small"] == [], (path, found)
            if size == (1366, 768) and path != "/":
                page.wait_for_timeout(500)
                name = "page-run-compare.png" if path.startswith("/run/") else "page-runs.png"
                page.screenshot(path=str(ROOT / "docs" / name), full_page=True)
        finally:
            page.context.close()


def test_hostile_text_in_the_pages_stays_text(browser: Browser, lab: Lab) -> None:
    run = lab.run_id(XSS_NAME)
    for path in (f"/run/{run}", f"/run/{lab.run_id('exp/a')}?compare={run}", "/runs"):
        page = open_page(browser, lab.server.url + path)
        try:
            if path == f"/run/{run}":
                wait_for(lambda: XSS in page.inner_text(".rp-params"), 10, what="the hostile params")  # noqa: B023
                assert page.text_content(".rp-name") == XSS_NAME and page.text_content(".rp-chart-t") == XSS
                assert "<script>window.__xss=1</script>" in page.inner_text(".rp-params")
            else:
                assert XSS_NAME in page.inner_text(".lw-body")
            assert_payloads_inert(page)
        finally:
            page.context.close()
