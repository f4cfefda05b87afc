"""Bad input against a LIVE server (a `main.py` subprocess): the 59-case malformed corpus written into
its run root while it runs, next to good runs; then bad HTTP of every kind. Nothing crashes, every
case is counted on its own run as tests/data/malformed/cases.json says, every bad request gets a
clean 4xx that leaks nothing, and the good runs and the wall go on streaming throughout.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from browser_support import open_wall, start_server
from hostile_support import (
    CASES,
    bad_lines_ok,
    case_bytes,
    clean_4xx,
    expected_steps,
    leaks,
    log_problems,
    raw_request,
    status_of,
)
from playwright.sync_api import Browser
from support import LabwallServer, wait_for

pytestmark = pytest.mark.browser
GOOD = {"good-jsonl": "metrics.jsonl", "good-csv": "log.csv"}
GOOD_STEPS = 20


def good_lines(name: str, steps: range) -> str:
    if name == "good-csv":
        return "".join(f"{s},{1.0 / s:.6f}\n" for s in steps)
    return "".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in steps)


def append(path: Path, data: str | bytes) -> None:
    with path.open("ab") as f:
        f.write(data.encode() if isinstance(data, str) else data)


@dataclass
class Live:
    server: LabwallServer
    root: Path
    client: httpx.Client

    def runs(self) -> dict[str, dict[str, Any]]:
        return {r["name"]: r for r in self.client.get("/api/runs").json()}

    def steps(self, run: dict[str, Any]) -> set[int]:
        """The distinct steps with a point in any of the run's metrics, read through the API."""
        steps: set[int] = set()
        for metric in run["metrics"]:
            body = self.client.get(f"/api/runs/{run['id']}/metrics/{quote(metric, safe='')}").json()
            steps |= {int(p[0]) for p in body["points"]}
        return steps


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    work = tmp_path_factory.mktemp("bad-input")
    root = work / "runs"
    for name, file in GOOD.items():
        (root / name).mkdir(parents=True)
        append(root / name / file, ("step,loss\n" if name == "good-csv" else "") + good_lines(name, range(1, 11)))
    # unterminated_line_s: the cases whose last line has no newline are judged after 0.5 s, not 60 s.
    server = start_server(work, {"gpu": {"backend": "simulated", "simulated_count": 2},
                                 "runs": {"unterminated_line_s": 0.5}}, ["--runs", str(root)])
    client = httpx.Client(base_url=server.url, timeout=10)
    live = Live(server, root, client)
    try:
        wait_for(lambda: set(GOOD) <= set(live.runs()), timeout=20, what="the good runs")
        # the corpus lands while the server runs, between two halves of the good runs' lines
        for case in CASES:
            run = root / Path(case["file"]).stem
            run.mkdir()
            append(run / case["file"], case_bytes(case, work))
        for name, file in GOOD.items():
            append(root / name / file, good_lines(name, range(11, GOOD_STEPS + 1)))
        names = {Path(c["file"]).stem for c in CASES} | set(GOOD)
        wait_for(lambda: names <= set(live.runs()), timeout=30, what="a run per malformed case")
        yield live
    finally:
        client.close()
        server.stop()


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_malformed_case_is_counted_on_its_run(live: Live, case: dict[str, Any]) -> None:
    name = Path(case["file"]).stem

    def settled() -> dict[str, Any] | None:
        run = live.runs()[name]
        return run if bad_lines_ok(case, run) and len(live.steps(run)) in expected_steps(case) else None

    run = wait_for(settled, timeout=15, interval=0.2,
                   what=f"{name}: {case['verdict']} at line {case.get('bad_line')}, {expected_steps(case)} steps "
                        f"(now {live.runs()[name]})")
    assert run["format"] == case["format"]
    if run["bad_lines"]:  # shown as text with its place, never as a stack trace
        assert not leaks(json.dumps(run["first_bad_line"]))


def test_good_runs_are_whole_and_keep_streaming(live: Live, browser: Browser) -> None:
    def whole(count: int) -> bool:
        runs = live.runs()
        return all(live.steps(runs[n]) == set(range(1, count + 1)) and runs[n]["bad_lines"] == 0 for n in GOOD)

    wait_for(lambda: whole(GOOD_STEPS), timeout=15, what=f"all {GOOD_STEPS} points of each good run")
    page = open_wall(browser, live.server.url)
    try:
        # after the corpus, new lines still reach the API and the open wall's run cards (most recent first)
        for name, file in GOOD.items():
            append(live.root / name / file, good_lines(name, range(GOOD_STEPS + 1, GOOD_STEPS + 11)))
        wait_for(lambda: whole(GOOD_STEPS + 10), timeout=15, what="the good runs' new points")
        for name in GOOD:
            page.wait_for_function(
                """([name, n]) => [...document.querySelectorAll('.wall .run:not(.off)')].some(c =>
                     c.querySelector('.r-name').textContent === name &&
                     c.querySelector('.r-step').textContent.startsWith('step ' + n))""",
                arg=[name, GOOD_STEPS + 10], timeout=15_000)
    finally:
        page.context.close()
    health = live.client.get("/healthz").json()
    assert health["collectors"]["runs"]["state"] == "ok", health
    assert health["collectors"]["runs"]["error_count"] == 0, health
    assert log_problems(live.server.logs()) == []


# ---- bad HTTP ------------------------------------------------------------------------------------
METHODS = ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "HEAD", "CONNECT", "PROPFIND"]
TRAVERSALS = [
    "..%2f..%2fetc%2fpasswd", "..%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e/%2e%2e/etc/passwd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..%252f..%252fetc%252fpasswd", "%252e%252e%252fetc%252fpasswd", "..\\..\\etc\\passwd", "..%5c..%5cetc%5cpasswd",
    "....//....//etc/passwd", "%c0%ae%c0%ae/etc/passwd", "good-jsonl%00", "a%00b", "%00", "...", "~root",
    "/etc/passwd", "%2fetc%2fpasswd", "file:%2f%2f%2fetc%2fpasswd", "x" * 8000,
]


def routes(live: Live) -> list[str]:
    run = live.runs()["good-jsonl"]
    return ["/", "/healthz", "/api/snapshot", "/api/runs", f"/api/runs/{run['id']}",
            f"/api/runs/{run['id']}/metrics/loss", "/api/alerts", "/api/events", "/metrics"]


def test_unknown_paths_get_a_json_404(live: Live) -> None:
    for path in ["/nope", "/api/nope", "/api/runs/", "/api", "/admin", "/.env", "/.git/config", "/etc/passwd",
                 "/_nicegui/../../etc/passwd", "/static/..%2f..%2fetc%2fpasswd", "/%2e%2e/%2e%2e/etc/passwd",
                 "/_nicegui/client/x/y", "/<script>alert(1)</script>", "/" + "a" * 8000]:
        response = live.client.get(path)
        assert response.status_code == 404, (path, response.status_code)
        assert response.headers["content-type"] == "application/json", path
        assert clean_4xx(response) is None and "<script>" not in response.text


def test_writes_are_refused_on_every_route(live: Live) -> None:
    found = []
    for path in routes(live):
        for method in METHODS:
            # a connection each: after CONNECT the parser takes the connection for a tunnel
            response = httpx.request(method, live.server.url + path, content=b'{"status": "ok"}', timeout=10)
            # CONNECT turns the connection into a tunnel: the HTTP parser may answer 400 itself, before any route
            allowed = (400, 405) if method == "CONNECT" else (405,)
            if response.status_code not in allowed or clean_4xx(response) is not None:
                found.append((method, path, response.status_code, response.text[:80]))
    assert found == []


def test_huge_and_many_headers_get_431(live: Live) -> None:
    for headers in ({"X-Big": "a" * 64 * 1024}, {"X-Big": "a" * 1024 * 1024}, {"Cookie": "c=" + "b" * 40_000},
                    {f"X-H{i}": "v" for i in range(500)}):
        for path in ("/", "/healthz", "/api/runs"):
            response = live.client.get(path, headers=headers)
            assert response.status_code == 431, (path, response.status_code)
            assert clean_4xx(response) is None and "request headers" in response.json()["detail"]
    # an ordinary browser's worth of headers still passes
    assert live.client.get("/healthz", headers={f"X-H{i}": "v" * 100 for i in range(40)}).status_code == 200


def test_traversal_in_run_ids_and_metrics_is_a_404(live: Live) -> None:
    run_id = live.runs()["good-jsonl"]["id"]
    found = []
    for bad in TRAVERSALS:
        for path in (f"/api/runs/{bad}", f"/api/runs/{bad}/metrics/loss", f"/api/runs/{run_id}/metrics/{bad}",
                     f"/api/runs/{bad}/metrics/{bad}"):
            response = live.client.get(path)
            problem = clean_4xx(response, str(live.root))
            if problem or response.status_code != 404 or response.json()["error"] != "not found":
                found.append((path[:60], response.status_code, problem))
    assert found == []
    # httpx resolves `..` and `.` itself, and will not send a 100 KB id: those go over a raw socket
    for path in (f"/api/runs/{run_id}/metrics/..", f"/api/runs/{run_id}/..", "/api/runs/./..", "/api/runs/.."):
        answer = raw_request(live.server.port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        assert status_of(answer) == 404 and not leaks(answer.decode("latin-1"), str(live.root)), (path, answer[:300])
    answer = raw_request(live.server.port, b"GET /api/runs/" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(answer) == 400 and not leaks(answer.decode("latin-1"))


@pytest.mark.parametrize("query", [
    "after=-1", "after=abc", "after=1e400", "after=1.5", "after=", "after=99999999999999999999999999",
    f"after={2**63}", "after=0x10", "limit=abc", "limit=1e9999", "cursor=-1", "cursor=abc", "afer=5",
    "after=%00", "after=" + "9" * 5000,
])
def test_bad_query_params_get_a_400_naming_the_parameter(live: Live, query: str) -> None:
    run_id = live.runs()["good-jsonl"]["id"]
    for path in ("/api/events", f"/api/runs/{run_id}/metrics/loss"):
        if path != "/api/events" and query.startswith("limit="):
            continue
        response = live.client.get(f"{path}?{query}")
        assert response.status_code == 400, (path, query, response.status_code, response.text[:200])
        assert clean_4xx(response) is None
        assert query.split("=")[0] in response.json()["detail"], response.text[:200]
        assert len(response.text) < 500  # the value is echoed shortened, never whole
    # the good values still work
    assert live.client.get(f"/api/runs/{run_id}/metrics/loss?after=0").json()["points"]
    assert live.client.get("/api/events?after=0&limit=5").status_code == 200


@pytest.mark.parametrize("request_bytes", [
    b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\x00\x01\x02\xff\xfe\r\n\r\n",
    b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n", b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /../../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /api/runs/../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /api/runs/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
], ids=lambda b: repr(b[:24]))
def test_malformed_requests_over_a_raw_socket(live: Live, request_bytes: bytes) -> None:
    answer = raw_request(live.server.port, request_bytes)
    assert status_of(answer) in (400, 404), answer[:200]
    assert not leaks(answer.decode("latin-1"), str(live.root))


def test_the_server_is_unaffected(live: Live, browser: Browser) -> None:
    health = live.client.get("/healthz").json()
    assert health["status"] == "ok", health
    page = open_wall(browser, live.server.url)  # open_wall waits until the page streams
    page.context.close()
    assert log_problems(live.server.logs()) == []
