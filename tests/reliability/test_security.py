"""Security on one live server (tests/browser/xss_harness.py: the real main.py plus a route that adds
event lines): the wall is read-only whatever a browser sends, outside text is shown as text and
never runs, and secrets in the arguments and environment of real GPU processes never leave it.

The server's simulated GPUs carry the XSS payloads as GPU names, users and commands; GPU 7 runs two
real child processes (tests/join_child.py) started with secrets, read from /proc like real GPU
processes ("real": true in the scenario). Runs under the run root are named with the payloads and
log metrics named with them; one crashes with a payload as its error, raising the alert banner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_support import open_wall, start_server, wait_live, write_json
from hostile_support import log_problems
from playwright.sync_api import Browser, Page
from support import ROOT, LabwallServer, wait_for

pytestmark = pytest.mark.browser
HARNESS = ROOT / "tests" / "browser" / "xss_harness.py"
CHILD = ROOT / "tests" / "join_child.py"

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
CRASH = f"RuntimeError: {PAYLOADS[1]}"  # the error line of the run that crashes

# Real GPU processes: secrets in their arguments (which labwall reads and redacts) and environment.
CHILD_ARGS = [
    ["--token", "tok4f1a9c2e7b11", "--lr", "3e-4", "--wandb-api-key=9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
     "--output_dir", "/tmp/out-run", "https://bob:pw9c8e7f6a@git.lab.example/x.git", "DB_PASSWORD=pg55aa77secret",
     "--password", "two words s3cret", "hf_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"],
    ["--api_key", "ak77e1d0c9b8", "--epochs", "3", "AKIAIOSFODNN7EXAMPLE", "--config", "conf/eval.yaml"],
]
ARG_SECRETS = ["tok4f1a9c2e7b11", "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432", "pw9c8e7f6a", "pg55aa77secret",
               "s3cret", "hf_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6", "ak77e1d0c9b8", "AKIAIOSFODNN7EXAMPLE"]
SHOWN = [  # what stays of each command line: flag names and every argument that is not a secret
    ["join_child.py --token *** --lr 3e-4 --wandb-api-key=*** --output_dir /tmp/out-run",
     "https://bob:***@git.lab.example/x.git DB_PASSWORD=*** --password *** ***"],
    ["join_child.py --api_key *** --epochs 3 *** --config conf/eval.yaml"],
]
CHILD_ENV = {"HF_TOKEN": "hf_envZ9y8X7w6V5u4T3s2R1q0P9o8N7m6L5", "LAB_DB_PASSWORD": "envpw31c4e2",
             "PLAIN_SETTING": "env-only-value-8c2d"}
SECRETS = [*ARG_SECRETS, *CHILD_ENV.values()]


def scenario(pids: list[int]) -> dict[str, Any]:
    """8 GPUs named with payloads, up to 3 processes each with payload users and commands; GPU 7 runs the
    real children."""
    gpus = []
    for g in range(8):
        processes = [{"pid": 50_000 + i, "user": PAYLOADS[(i + 7) % len(PAYLOADS)], "command": PAYLOADS[i],
                      "gpu_memory_bytes": (k + 1) * 2**30} for k in range(3) if (i := g * 3 + k) < len(PAYLOADS)]
        gpus.append({"name": PAYLOADS[(g * 2 + 1) % len(PAYLOADS)], "processes": processes})
    gpus[7]["processes"] = [{"pid": pid, "real": True, "gpu_memory_bytes": 2**30} for pid in pids]
    return {"gpus": gpus}


def write_run(root: Path, i: int, steps: range) -> None:
    """Run i: named PAYLOADS[i] (a `/` in it makes nested directories; the run name is the relative path),
    logging one metric named PAYLOADS[i + 10], so that metric is the run's main metric."""
    run = root / PAYLOADS[i]
    run.mkdir(parents=True, exist_ok=True)
    with (run / "metrics.jsonl").open("a") as f:
        f.write("".join(json.dumps({"step": s, PAYLOADS[(i + 10) % 20]: 1.0 / s}) + "\n" for s in steps))


@dataclass
class Hostile:
    server: LabwallServer
    root: Path
    roots: list[str]

    def get(self, path: str) -> httpx.Response:
        return self.server.get(path)


def start_child(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, str(CHILD), *args], cwd=cwd, text=True, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, env={**os.environ, **CHILD_ENV})
    assert child.stdout is not None and child.stdout.readline().startswith("ready"), "child did not start"
    return child


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    work = tmp_path_factory.mktemp("hostile")
    children = [start_child(args, work) for args in CHILD_ARGS]
    try:
        root = work / "runs"
        for i in range(10):
            write_run(root, i, range(1, 4))
        roots = [str(root), str(work / PAYLOADS[0]), str(work / PAYLOADS[2]), str(work / "<b>bold</b> [x](js:y)")]
        config = {
            "host_label": "<img src=x onerror=window.__xss=1>",
            "gpu": {"backend": "simulated",
                    "simulated_scenario": str(write_json(work / "scenario.json", scenario([c.pid for c in children])))},
            "runs": {"roots": roots, "max_depth": 6},
            "join": {"interval_s": 0.2},
            "wall": {"title": "<script>window.__xss=1</script>"},
        }
        server = start_server(work, config, script=HARNESS, env={"LABWALL_TEST_EVENTS": json.dumps(PAYLOADS)})
        try:
            hostile = Hostile(server, root, roots)
            wait_for(lambda: len(hostile.get("/api/runs").json()) == 10, timeout=20, what="the 10 payload-named runs")
            yield hostile
        finally:
            server.stop()
    finally:
        for child in children:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(5)


# ---- read-only: forged client messages ----------------------------------------------------------
FORGE_JS = """async (marker) => {
  const ids = Object.keys(mounted_app.elements).map(Number);
  const real = Object.values(mounted_app.elements).flatMap(e => (e.events || []).map(l => l.listener_id));
  // A client event names no DOM event: NiceGUI routes it by listener id alone. So every listener id any
  // element of the page has, on every element, plus ids no element has (a DOM name, a Vue one, odd ones).
  const names = [...new Set([...real, 'click', 'update:model-value', '__proto__', '', marker])];
  const args = [JSON.stringify({value: marker, gpus: [], path: '/../../etc/passwd'}), JSON.stringify(marker), 'null'];
  // every 500 messages wait for the server's answer, so a burst never starves the page's own pings
  const acked = (kind, msg) => new Promise((resolve) => window.socket.emit(kind, msg, resolve));
  let sent = 0;
  const emit = async (kind, msg) => {
    sent++;
    if (sent % 500 === 0) await acked(kind, msg); else window.socket.emit(kind, msg);
  };
  for (const id of ids) for (const listener_id of names) {
    await emit('event', {id, client_id: window.clientId, listener_id, args});
  }
  const big = marker + 'x'.repeat(900_000);  // just under socket.io's 1 MB message limit
  const other = 'another-client-' + marker;
  const me = window.clientId;
  const odd = [null, 1, 'text', [], {}, {client_id: 5}, {client_id: me}, {id: 'x', client_id: me}];
  for (const msg of [
    ...odd.map(m => ['event', m]), ...odd.map(m => ['javascript_response', m]), ...odd.map(m => ['ack', m]),
    ...odd.map(m => ['log', m]), ...odd.map(m => ['handshake', m]),
    ['event', {id: ids[0], client_id: window.clientId, listener_id: real[0] || 'click', args: [big]}],
    ['event', {id: 0, client_id: other, listener_id: 'click', args: []}],
    ['javascript_response', {request_id: marker, client_id: window.clientId, result: big}],
    ['javascript_response', {request_id: 7, client_id: window.clientId}],
    ['ack', {client_id: window.clientId, next_message_id: 'abc'}],
    ['ack', {client_id: window.clientId, next_message_id: 2 ** 60}],
    ['ack', {client_id: other, next_message_id: 0}],
    ['log', {client_id: window.clientId, level: 'critical', message: marker}],
    ['log', {client_id: window.clientId, level: 'error', message: 'Traceback (most recent call last):\\n  ' + marker}],
    ['log', {client_id: window.clientId, level: 'error', message: big}],
    ['handshake', {client_id: other, tab_id: marker, document_id: marker}],
    ['handshake', {client_id: window.clientId, tab_id: marker, document_id: marker, next_message_id: 'abc'}],
    ['handshake', {client_id: window.clientId, tab_id: marker}],
    ['no_such_message', {client_id: window.clientId}],
  ]) await emit(...msg);
  await acked('event', null);
  return [sent, ids.length];
}"""


def store_view(hostile: Hostile) -> dict[str, Any]:
    """What a forged message must not change: GPUs and their processes, runs, alerts."""
    gpus = hostile.get("/api/snapshot").json()["gpus"]
    runs = hostile.get("/api/runs").json()
    return {
        "gpus": [(g["uuid"], g["name"], [(q["pid"], q["user"], q["command"]) for q in g["processes"]]) for g in gpus],
        "runs": sorted((r["id"], r["name"], tuple(r["metrics"]), r["bad_lines"]) for r in runs),
        "alerts": [a["id"] for a in hostile.get("/api/alerts").json()["active"]],
    }


def test_forged_client_messages_change_nothing(hostile: Hostile, browser: Browser) -> None:
    victim = open_wall(browser, hostile.server.url)
    page = open_wall(browser, hostile.server.url)
    try:
        marker = "FORGED-7f3a"
        before, events_before = store_view(hostile), hostile.get("/api/events").json()["events"]
        sent, elements = page.evaluate(FORGE_JS, marker)
        assert elements > 200 and sent > 5 * elements  # every element × every name, plus NiceGUI's own messages
        victim_id = victim.evaluate("() => window.clientId")
        hijack = page.evaluate("""(id) => new Promise((resolve) => window.socket.emit('handshake',
            {client_id: id, tab_id: 'forged', document_id: 'forged'}, resolve))""", victim_id)
        assert hijack is False  # another client's page cannot be taken over
        # both pages still stream, nothing a viewer sent reached the store or the event log
        wait_live(page)
        wait_live(victim)
        assert store_view(hostile) == before
        events = hostile.get("/api/events").json()["events"]
        assert events[: len(events_before)] == events_before
        assert not [e for e in events if marker in e["text"]]
        assert marker not in page.evaluate("() => document.querySelector('.wall').innerText")
        # forged messages are dropped quietly (one warning line a minute), never one traceback each
        logs = hostile.server.logs()
        assert log_problems(logs) == [], log_problems(logs)[:5]
        assert "ignored" in logs and "client message" in logs
        assert logs.count(marker) <= 2 and "x" * 1000 not in logs  # browser log lines: one, quoted, shortened
    finally:
        page.context.close()
        victim.context.close()


# ---- XSS: outside text is text --------------------------------------------------------------------
# The wall's own links (GPU tiles, run cards, the runs title, the usage strip) have these targets;
# any other <a>, or one of them pointing elsewhere, was made by a payload.
ELEMENTS_MADE = r"""() => [...document.querySelectorAll(
    '.wall img, .wall iframe, .wall object, .wall script, .wall details, .wall math, .wall b, ' +
    '.wall body, .wall style, .wall input, .wall mglyph, .wall table')].map(e => e.tagName).concat(
    [...document.querySelectorAll('.wall a')].map(a => a.getAttribute('href') || '')
      .filter(h => !/^\/(gpu\/[^/?#]+\/\d+|run\/[A-Za-z0-9][A-Za-z0-9_.-]*|runs|usage)$/.test(h))
      .map(h => 'A ' + h))"""


def wall_text(page: Page) -> str:
    return page.evaluate("() => document.querySelector('.wall').innerText")


def cards(page: Page) -> list[list[str]]:
    return page.evaluate("""() => [...document.querySelectorAll('.wall .run:not(.off)')].map(c =>
        [c.querySelector('.r-name').textContent, c.querySelector('.r-metric').textContent])""")


def shows_runs(page: Page, runs: range) -> bool:
    shown = cards(page)
    return all(any(name == PAYLOADS[i] and metric.startswith(PAYLOADS[(i + 10) % 20] + " ") for name, metric in shown)
               for i in runs)


def test_payloads_are_shown_as_text_and_never_run(hostile: Hostile, browser: Browser) -> None:
    page = open_wall(browser, hostile.server.url)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        log = lambda: page.evaluate("() => document.querySelector('.ev-log').innerText")  # noqa: E731
        # the first half of the event lines were in the store before the page opened (its first render)...
        wait_for(lambda: all(p in log() for p in PAYLOADS[:10]), timeout=10, what="the first events")
        # ...the rest arrive while it is open (the streaming path)
        assert httpx.post(hostile.server.url + "/test/more-events", timeout=5).status_code == 200
        wait_for(lambda: all(p in log() for p in PAYLOADS), timeout=10, interval=0.25, what="the streamed events")
        # runs 0-9 have cards (names and metric names are payloads); runs 10-19 arrive and take the cards
        wait_for(lambda: shows_runs(page, range(10)), timeout=15, interval=0.25, what=f"runs 0-9 (now {cards(page)})")
        for i in range(10, 20):
            write_run(hostile.root, i, range(1, 4))
        wait_for(lambda: shows_runs(page, range(10, 20)), timeout=20, interval=0.25,
                 what=f"runs 10-19 (now {cards(page)})")
        # run 19 crashes with a payload as its error: the alert banner names the run, the feed the error
        with (hostile.root / PAYLOADS[19] / "train.log").open("a") as f:
            f.write(f'step=4 loss=0.5\nTraceback (most recent call last):\n  File "train.py", line 9\n{CRASH}\n')
        banner = page.locator(".wall .alert-banner:not(.off)")
        banner.wait_for(timeout=20_000)
        wait_for(lambda: f"run {PAYLOADS[19]} crashed" in banner.inner_text(), timeout=10,
                 what=f"the crash in the banner (now {banner.inner_text()!r})")
        wait_for(lambda: CRASH in log(), timeout=10, what="the crash's error line in the event feed")
        shown = wall_text(page)
        gpus = hostile.get("/api/snapshot").json()["gpus"]
        assert all(gpu["name"] in shown for gpu in gpus)
        for gpu in gpus[:7]:  # GPU 7 runs the real children (see the redaction test)
            for process in gpu["processes"]:
                assert process["user"] in shown and process["command"] in shown
        assert shown.count("<img src=x onerror=window.__xss=1>") >= 3  # host label, command, event...
        # where labwall looks (shown while no run existed; still in the page as text)
        roots = page.evaluate("() => [...document.querySelectorAll('.wall .re-root')].map(e => e.textContent)")
        assert roots == hostile.roots
        assert page.title() == "<script>window.__xss=1</script>"
        page.hover(".wall .run:not(.off) .r-name")
        wait_live(page)  # a couple more ticks for anything that might run late
        assert page.evaluate("() => window.__xss") is None and dialogs == []
        assert page.evaluate(ELEMENTS_MADE) == []
        # Plotly draws the charts' SVG; no outside text is ever given to a chart
        assert page.evaluate("() => [...document.querySelectorAll('.wall svg text')].map(t => t.textContent)"
                             ".filter(t => t.includes('<') || t.includes('xss'))") == []
    finally:
        page.context.close()


# ---- redaction on real processes -------------------------------------------------------------------
def test_secrets_of_real_gpu_processes_never_leave_the_server(hostile: Hostile, browser: Browser) -> None:
    def commands() -> list[str] | None:
        processes = hostile.get("/api/snapshot").json()["gpus"][7]["processes"]
        found = [p["command"] or "" for p in processes]
        return found if len(found) == 2 and all("join_child.py" in c for c in found) else None

    shown = wait_for(commands, timeout=15, what="GPU 7's two real processes with their command lines")
    for command, parts in zip(shown, SHOWN, strict=True):
        assert all(part in command for part in parts), command
    page = open_wall(browser, hostile.server.url)
    try:
        page.wait_for_function("(t) => document.querySelector('.wall').innerText.includes(t)", arg=SHOWN[1][0],
                               timeout=15_000)
        answers = {path: hostile.get(path).text for path in
                   ("/api/snapshot", "/api/runs", "/api/alerts", "/api/events?limit=1000", "/healthz", "/metrics")}
        answers["the wall (text)"] = wall_text(page)
        answers["the wall (HTML)"] = page.content()
        answers["the server log"] = hostile.server.logs()
        leaked = {where: found for where, text in answers.items() if (found := [s for s in SECRETS if s in text])}
        assert leaked == {}, leaked
    finally:
        page.context.close()
    # labwall never reads /proc/PID/environ: no environment value shows up anywhere (checked above),
    # and no code path opens it
    sources = [p.read_text() for d in ("collectors", "monitor") for p in (ROOT / d).rglob("*.py")]
    assert not [s for s in sources if "environ()" in s or "/environ" in s]
