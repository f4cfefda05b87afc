"""Helpers for the bad-input and security suites: the malformed corpus, raw sockets, and the checks
that an answer or a log leaks nothing (no traceback, no file content, no server path)."""

from __future__ import annotations

import json
import runpy
import socket
import time
from pathlib import Path
from typing import Any

import httpx
from support import ROOT

DATA = ROOT / "tests" / "data" / "malformed"
CASES: list[dict[str, Any]] = json.loads((DATA / "cases.json").read_text())["cases"]
# Where the count of steps with points differs from the count of good records (as in tests/runs).
DISTINCT_STEPS = {"36_step_goes_backwards.jsonl": 4, "49_csv_nan_inf_values.csv": 4}
# What must never appear in an answer to a bad request: a traceback, /etc/passwd, where the code lives.
LEAKS = ("Traceback", "root:x:0:0", "root:*:", str(ROOT), "site-packages", "/usr/lib/python", 'File "')


def case_bytes(case: dict[str, Any], work: Path) -> bytes:
    """A case's file content; the 11 MiB case is generated (it is not stored in the repository)."""
    if not case.get("generated"):
        return (DATA / case["file"]).read_bytes()
    target = work / case["file"]
    if not target.exists():
        runpy.run_path(str(DATA.parent / "generate_samples.py"))["make_huge_line_case"](target)
    return target.read_bytes()


def expected_steps(case: dict[str, Any]) -> set[int]:
    """How many distinct steps the case's run may have points for (two numbers for "either")."""
    if case["file"] in DISTINCT_STEPS:
        return {DISTINCT_STEPS[case["file"]]}
    return {case["good_lines"], case.get("good_lines_if_accepted", case["good_lines"])}


def bad_lines_ok(case: dict[str, Any], run: dict[str, Any]) -> bool:
    """cases.json's verdict: `reject` -> exactly one bad line, where it says; `accept`/`ignore` -> none;
    `either` -> none, or that one."""
    verdict, bad, first = case["verdict"], run["bad_lines"], run.get("first_bad_line") or {}
    if verdict == "reject":
        return bad == 1 and first.get("line") == case["bad_line"] and bool(first.get("reason")) \
            and first.get("file") == case["file"]
    if verdict in ("accept", "ignore"):
        return bad == 0
    return bad == 0 or (bad == 1 and first.get("line") == case["bad_line"])


def leaks(text: str, *more: str) -> list[str]:
    """The forbidden strings found in `text` (an answer body or a server log)."""
    return [s for s in (*LEAKS, *more) if s and s in text]


def clean_4xx(response: httpx.Response, *more: str) -> str | None:
    """None when `response` is a 4xx that leaks nothing; otherwise what is wrong with it."""
    if not 400 <= response.status_code < 500:
        return f"{response.request.method} {response.request.url.raw_path[:80]!r}: {response.status_code}"
    found = leaks(response.text, *more)
    return f"{response.request.url.raw_path[:80]!r} leaks {found}" if found else None


def raw_request(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send bytes as they are (httpx refuses malformed requests) and read the answer until the server closes
    the connection or a complete answer has arrived."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), None)
            if length is not None and len(body) >= length:
                break
        return answer


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer (0 when there is none)."""
    parts = answer.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[0].startswith(b"HTTP/") and parts[1].isdigit() else 0


def log_problems(log: str) -> list[str]:
    """Lines of a server log that show a crash: tracebacks and ERROR/CRITICAL records (a quoted text a
    browser sent is logged on one line and starts no line)."""
    return [line for line in log.splitlines() if line.startswith(("Traceback", "ERROR", "CRITICAL"))]
