"""Text from outside is text: 20 XSS payloads in process commands, user names, GPU names, event
lines, run roots and the host label are shown literally, and none of them runs."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from conftest import open_wall, start_server, write_json
from playwright.sync_api import Browser
from support import wait_for

pytestmark = pytest.mark.browser
HERE = Path(__file__).resolve().parent

PAYLOADS = [
    "<img src=x onerror=window.__xss=1>",
    "<script>window.__xss=1</script>",
    "<svg onload=window.__xss=1>",
    "<svg><script>window.__xss=1</script></svg>",
    "javascript:window.__xss=1",
    '<a href="javascript:window.__xss=1">click me</a>',
    "[x](javascript:window.__xss=1)",
    "**<b>bold</b>** _it_ `code`",
    '<iframe src="javascript:window.__xss=1"></iframe>',
    '"><img src=x onerror=window.__xss=1>',
    "'><script>window.__xss=1</script>",
    "<body onload=window.__xss=1>",
    "<details open ontoggle=window.__xss=1>",
    "{{ constructor.constructor('window.__xss=1')() }}",
    "${window.__xss=1}",
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=1>",
    '![img](x" onerror="window.__xss=1)',
    "<style>@import 'javascript:window.__xss=1'</style>",
    "&lt;script&gt;window.__xss=1&lt;/script&gt;",
    '<object data="javascript:window.__xss=1"></object>',
]
assert len(PAYLOADS) == 20


def scenario() -> dict:
    """8 GPUs, up to 3 processes each: every payload is a user name and a command somewhere."""
    gpus = []
    for g in range(8):
        processes = []
        for k in range(3):
            i = g * 3 + k
            if i < len(PAYLOADS):
                processes.append({"pid": 50_000 + i, "user": PAYLOADS[(i + 7) % len(PAYLOADS)],
                                  "command": PAYLOADS[i], "gpu_memory_bytes": (k + 1) * 2**30})
        gpus.append({"name": PAYLOADS[(g * 2 + 1) % len(PAYLOADS)], "processes": processes})
    return {"gpus": gpus}


@pytest.fixture(scope="module")
def xss_server(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("xss")
    roots = [str(workdir / p) for p in (PAYLOADS[0], PAYLOADS[2], "<b>bold</b> [x](javascript:y)")]
    config = {
        "host_label": "<img src=x onerror=window.__xss=1>",
        "gpu": {"backend": "simulated", "simulated_scenario": str(write_json(workdir / "scenario.json", scenario()))},
        "runs": {"roots": roots},
        "wall": {"title": "<script>window.__xss=1</script>"},
    }
    env = {"LABWALL_TEST_EVENTS": json.dumps(PAYLOADS)}
    server = start_server(workdir, config, script=HERE / "xss_harness.py", env=env)
    server.roots = roots  # type: ignore[attr-defined]
    yield server
    server.stop()


def test_payloads_are_shown_as_text_and_never_run(browser: Browser, xss_server) -> None:
    page = open_wall(browser, xss_server.url)
    try:
        text = lambda: page.evaluate("() => document.querySelector('.wall').innerText")  # noqa: E731
        log = lambda: page.evaluate("() => document.querySelector('.ev-log').innerText")  # noqa: E731
        # half of the event payloads were in the store before the page opened (its first render)...
        wait_for(lambda: all(p in log() for p in PAYLOADS[:10]), timeout=10, what="the first events")
        assert PAYLOADS[-1] not in log()
        # ...the rest arrive while it is open (the streaming path)
        assert httpx.post(xss_server.url + "/test/more-events", timeout=5).status_code == 200
        wait_for(lambda: all(p in log() for p in PAYLOADS), timeout=10, interval=0.25,
                 what="the streamed event payloads")
        wait_for(lambda: all(p in text() for p in PAYLOADS), timeout=10, interval=0.25,
                 what="every payload to appear as text on the wall")
        page.wait_for_timeout(1500)  # a couple more ticks for anything that might run late
        assert page.evaluate("() => window.__xss") is None
        shown = text()
        snapshot = xss_server.get("/api/snapshot").json()
        for gpu in snapshot["gpus"]:
            assert gpu["name"] in shown
            for process in gpu["processes"]:
                assert process["user"] in shown and process["command"] in shown
        for root in xss_server.roots:
            assert root in shown
        assert shown.count("<img src=x onerror=window.__xss=1>") >= 3  # host label, command, event...
        # nothing was parsed into markup: no element a payload could have created exists
        made = page.evaluate("""() => [...document.querySelectorAll(
            '.wall img, .wall iframe, .wall object, .wall script, .wall details, .wall math, .wall a, .wall b, ' +
            '.wall body, .wall style, .wall input')].map(e => e.tagName)""")
        assert made == []
        assert page.title() == "<script>window.__xss=1</script>"
        # Plotly draws the charts' SVG; no outside text is ever given to a chart
        assert page.evaluate("() => [...document.querySelectorAll('.wall svg text')].map(t => t.textContent)"
                             ".filter(t => t.includes('<') || t.includes('xss'))") == []
    finally:
        page.context.close()
