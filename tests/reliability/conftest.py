"""Reliability suite: faults and bad input against a real labwall server and a real browser."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser_support import launched_browser
from playwright.sync_api import Browser


# Module scope for the same reason as tests/browser: the sync Playwright loop must not outlive a module.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_browser() as browser:
        yield browser
