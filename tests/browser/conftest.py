"""Browser tests: a real labwall server (a `main.py` subprocess) and Debian's Chromium through
Playwright. The helpers live in tests/browser_support.py so other suites (tests/reliability) share them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser_support import launched_browser, start_server
from playwright.sync_api import Browser
from support import LabwallServer, wait_for


# Module scope, not session: the sync Playwright API runs an asyncio loop in this thread while it is
# open, which would break later tests that use asyncio.run or start their own Playwright.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_browser() as browser:
        yield browser


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabwallServer]:
    """The wall in demo mode with 8 simulated GPUs, shared by a module's tests."""
    config = {"host_label": "gpu-server-1", "gpu": {"simulated_count": 8}}
    server = start_server(tmp_path_factory.mktemp("wall"), config, ["--demo"])
    wait_for(lambda: len(server.get("/api/snapshot").json()["gpus"]) == 8, 10, what="8 simulated GPUs")
    yield server
    server.stop()
