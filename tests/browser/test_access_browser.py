"""A kiosk URL with ?token=…: Chromium keeps the cookie, the wall streams; a browser without it gets
the readable 403 and no live socket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import FULL_HD, start_server, wait_live
from playwright.sync_api import Browser
from support import LabwallServer

TOKEN = "kiosk-token-0123456789abcdef"


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabwallServer]:
    server = start_server(Path(tmp_path_factory.mktemp("access")), {"server": {"token": TOKEN}}, ["--demo"])
    yield server
    server.stop()


def test_kiosk_url_with_token_streams_and_keeps_the_cookie(browser: Browser, guarded_server: LabwallServer) -> None:
    context = browser.new_context(viewport=FULL_HD)
    page = context.new_page()
    page.goto(f"{guarded_server.url}/?token={TOKEN}")
    wait_live(page)
    assert "token" not in page.url, "the token leaves the address bar once the cookie is set"
    page.reload()
    wait_live(page)  # the cookie alone is enough, also for the socket that streams the wall
    context.close()


def test_browser_without_token_gets_a_readable_refusal(browser: Browser, guarded_server: LabwallServer) -> None:
    context = browser.new_context(viewport=FULL_HD)
    page = context.new_page()
    response = page.goto(guarded_server.url + "/")
    assert response is not None and response.status == 403
    assert "access denied" in page.inner_text("body") and "token" in page.inner_text("body")
    assert page.query_selector(".wall") is None
    context.close()
