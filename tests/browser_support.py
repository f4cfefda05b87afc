"""Shared by browser suites: a real labwall server (a `main.py` subprocess) and Debian's Chromium through
Playwright. Playwright's own browser download does not work here, so the system binary is used."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, sync_playwright
from support import ROOT, LabwallServer

CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
FULL_HD = {"width": 1920, "height": 1080}


def chromium_path() -> str:
    found = os.environ.get("LABWALL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise RuntimeError("chromium not found: run `bash tests/ensure_chromium.sh` (make test does)")
    return found


def launch_args() -> list[str]:
    # Chromium refuses to start its sandbox as root (CI runs as root).
    return [*CHROMIUM_ARGS, *(["--no-sandbox"] if os.geteuid() == 0 else [])]


@contextmanager
def launched_browser() -> Iterator[Browser]:
    """Debian's Chromium through Playwright, closed on exit."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=launch_args())
        try:
            yield browser
        finally:
            browser.close()


def open_wall(browser: Browser, url: str, viewport: dict[str, int] | None = None) -> Page:
    """A new browser context on the wall, returned once the page streams (its charts have points)."""
    context = browser.new_context(viewport=viewport or FULL_HD)
    page = context.new_page()
    page.goto(url)
    wait_live(page)
    return page


def wait_live(page: Page, timeout: float = 15.0) -> None:
    """Until the clock has moved at least once after the charts were drawn: the page is streaming."""
    page.wait_for_function("() => document.querySelectorAll('.wall .js-plotly-plot').length > 0 && "
                           "[...document.querySelectorAll('.wall .js-plotly-plot')].every(e => e._fullLayout)",
                           timeout=timeout * 1000)
    first = page.text_content(".clock")
    page.wait_for_function("(t) => document.querySelector('.clock')?.textContent !== t", arg=first,
                           timeout=timeout * 1000)


def start_server(workdir: Path, config: dict[str, Any] | None = None, args: list[str] | None = None,
                 script: Path | None = None, env: dict[str, str] | None = None) -> LabwallServer:
    """A labwall server; `script` runs instead of main.py (same command line) for test harnesses."""
    server = LabwallServer(workdir, config, args, env)
    if script is None:
        return server.start()
    log = server.log_path.open("ab")
    server.proc = subprocess.Popen(
        [sys.executable, str(script), "--config", str(server.config_path), *server.args],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=server.env,
    )
    server.wait_ready()
    return server


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def assert_payloads_inert(page: Page, root: str = ".lw-body") -> None:
    """Hostile text planted by a test stayed text: hovering runs nothing, no element was made from it."""
    page.hover(root)
    assert page.evaluate("() => window.__xss") is None
    planted = f"() => document.querySelectorAll('{root} img, {root} script, {root} b').length"
    assert page.evaluate(planted) == 0
