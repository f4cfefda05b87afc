"""`/gpu/{host}/{index}` and `/usage` in a real Chromium against a real demo server (the demo lab's
trainers on simulated GPUs, durable storage on): live history, the joined processes, the numbers of
/api/usage, readable 404s, and every screen size without sideways scrolling."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import assert_payloads_inert, start_server
from playwright.sync_api import Browser, Page
from support import ROOT, LabwallServer, wait_for

HOST = "test-host"
SIZES = {"phone": (390, 844), "laptop": (1366, 768), "1080p": (1920, 1080), "4k": (3840, 2160)}
DRAWN = ("() => document.querySelector('.lw-page') !== null && "
         "[...document.querySelectorAll('.js-plotly-plot')].every(e => e._fullLayout)")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabwallServer]:
    work = Path(tmp_path_factory.mktemp("gpu-usage"))
    config = {"host_label": HOST, "gpu": {"simulated_count": 4}, "storage": {"path": str(work / "labwall.db")}}
    server = start_server(work, config, ["--demo"])
    wait_for(lambda: any(p.get("run_name") for g in server.get("/api/snapshot").json()["gpus"]
                         for p in g.get("processes", [])), 30, what="a GPU process joined to its run")
    yield server
    server.stop()


def open_page(browser: Browser, url: str, size: tuple[int, int] = (1366, 768)) -> Page:
    page = browser.new_context(viewport={"width": size[0], "height": size[1]}).new_page()
    page.goto(url)
    page.wait_for_function(DRAWN, timeout=30_000)
    return page


def trace_lengths(page: Page) -> list[int]:
    return page.evaluate("() => [...document.querySelectorAll('.gp-plot')].map(e => e.data[0].x.length)")


def test_gpu_page_shows_now_history_and_processes_and_streams(browser: Browser, server: LabwallServer) -> None:
    page = open_page(browser, f"{server.url}/gpu/{HOST}/0")
    try:
        assert page.text_content(".lw-title").startswith("GPU 0 · ")
        gpu = server.get("/api/snapshot").json()["gpus"][0]
        facts = page.inner_text(".lw-kv")
        assert gpu["uuid"] in facts and "GiB" in facts and "%" in facts
        assert len(trace_lengths(page)) == 5, "utilisation, memory, temperature, power, clocks"
        first = trace_lengths(page)[0]
        wait_for(lambda: trace_lengths(page)[0] >= first + 2, 10, what="new points extending the chart")
        wait_for(lambda: "alice/demo-llama" in page.inner_text(".gp-procs"), 10, what="the joined run")
        assert "alice" in page.inner_text(".gp-procs") and "torchrun" in page.inner_text(".gp-procs")
        assert page.get_attribute("a.gp-on", "href") == "?span=1h"
    finally:
        page.context.close()


def test_gpu_page_spans_are_the_viewers_own_url(browser: Browser, server: LabwallServer) -> None:
    page = open_page(browser, f"{server.url}/gpu/{HOST}/1?span=24h")
    try:
        assert page.get_attribute("a.gp-on", "href") == "?span=24h"
        assert "reload for newer" in page.inner_text(".rp-controls")
        assert trace_lengths(page)[0] >= 1
    finally:
        page.context.close()


def test_unknown_gpus_answer_a_readable_404(server: LabwallServer) -> None:
    for path in (f"/gpu/{HOST}/9", "/gpu/other-host/0", f"/gpu/{HOST}/%3Cscript%3E"):
        answer = server.get(path)
        assert answer.status_code == 404 and "No such GPU" in answer.text and "<script>" not in answer.text


def test_usage_page_shows_the_numbers_of_the_api(browser: Browser, server: LabwallServer) -> None:
    wait_for(lambda: server.get("/api/usage?by=user").json()["rows"], 90, 1.0, what="the first closed minute")
    page = open_page(browser, f"{server.url}/usage?span=day")
    try:
        note = page.inner_text(".rp-controls")
        since, until = re.search(r"since=(\d+)&until=(\d+)", note).groups()  # type: ignore[union-attr]
        api = server.get(f"/api/usage?by=user&since={since}&until={until}&bucket=hour").json()
        assert f"total {api['total']['gpu_hours']:.2f} GPU-h" in page.inner_text(".us-user .us-total")
        table = page.inner_text(".us-user .us-table")
        for row in api["rows"]:
            assert row["key"] in table and f"{row['gpu_hours']:.2f}" in table
        carol = next(r for r in api["rows"] if r["key"] == "carol")  # her job holds its GPU idle
        assert carol["idle_gpu_hours"] / carol["gpu_hours"] >= 0.5
        assert page.eval_on_selector_all(".us-idle", "els => els.length") >= 1, "a high idle share is marked"
        runs = page.eval_on_selector_all(".us-run a", "els => els.map(e => e.getAttribute('href'))")
        assert any(h.startswith("/run/") for h in runs)
        gpus = page.eval_on_selector_all(".us-gpu a", "els => els.map(e => e.getAttribute('href'))")
        assert f"/gpu/{HOST}/0" in gpus
    finally:
        page.context.close()


@pytest.mark.parametrize("size", list(SIZES.values()), ids=list(SIZES))
def test_gpu_and_usage_pages_fit_every_size(browser: Browser, server: LabwallServer, size: tuple[int, int]) -> None:
    for path, shot in ((f"/gpu/{HOST}/2", "page-gpu.png"), ("/usage", "page-usage.png")):
        page = open_page(browser, server.url + path, size)
        try:
            width = page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
            assert width[0] <= width[1], (path, width)
            if size == SIZES["laptop"]:
                page.screenshot(path=str(ROOT / "docs" / shot), full_page=True)
        finally:
            page.context.close()


XSS_USER = '<img src=x onerror="window.__xss=1">{{ 7*7 }}'
XSS_COMMAND = "python train.py --name '<script>window.__xss=1</script>' <b onmouseover=window.__xss=1>x"


def test_hostile_users_and_commands_stay_text_on_the_gpu_and_usage_pages(browser: Browser,
                                                                         tmp_path: Path) -> None:
    scenario = {"gpus": [{"processes": [{"pid": 424242, "user": XSS_USER, "command": XSS_COMMAND,
                                         "gpu_memory_bytes": 8 * 1024**3}]}]}
    (tmp_path / "scenario.json").write_text(json.dumps(scenario), encoding="utf-8")
    gpu = {"backend": "simulated", "simulated_scenario": str(tmp_path / "scenario.json")}
    config = {"host_label": HOST, "gpu": gpu, "storage": {"enabled": False}}
    server = start_server(tmp_path, config)
    try:
        wait_for(lambda: server.get("/api/usage?by=user").json()["rows"], 90, 1.0, what="the first closed minute")
        for path, where in ((f"/gpu/{HOST}/0", ".gp-procs"), ("/usage", ".us-user .us-table")):
            page = open_page(browser, server.url + path)
            try:
                shown = page.inner_text(where)
                assert XSS_USER in shown, (path, shown)
                if path.startswith("/gpu"):
                    assert "<script>window.__xss=1</script>" in shown and "<b onmouseover" in shown
                    assert XSS_USER in page.inner_text(".gp-holder-keys")
                assert_payloads_inert(page)
            finally:
                page.context.close()
    finally:
        server.stop()
