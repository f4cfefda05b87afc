"""Kiosk behaviour: an open wall comes back by itself after a server restart and a network drop."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
from browser_support import open_wall, start_server
from playwright.sync_api import Browser, Page
from support import LabwallServer, wait_for

pytestmark = pytest.mark.browser
LIVE_AGAIN_WITHIN_S = 15.0
STATE_JS = "() => [document.querySelector('.clock')?.textContent, performance.timeOrigin]"


@pytest.fixture(scope="module")
def kiosk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabwallServer]:
    server = start_server(tmp_path_factory.mktemp("kiosk"), {"gpu": {"simulated_count": 2}}, ["--demo"])
    yield server
    server.stop()


def state(page: Page) -> tuple[str | None, float] | None:
    try:
        clock, origin = page.evaluate(STATE_JS)
        return clock, origin
    except Exception:  # the page may be reloading at this instant
        return None


def wait_streaming(page: Page, timeout: float) -> float:
    """Seconds until the clock has ticked twice (the page receives live data); fails after `timeout`."""
    started = time.monotonic()
    seen: list[str] = []

    def ticked_twice() -> bool:
        found = state(page)
        if found and found[0] and (not seen or seen[-1] != found[0]):
            seen.append(found[0])
        return len(seen) >= 3

    wait_for(ticked_twice, timeout=timeout, interval=0.1, what="the open page to stream live data again")
    return time.monotonic() - started


def test_live_again_after_server_restart(browser: Browser, kiosk_server: LabwallServer) -> None:
    page = open_wall(browser, kiosk_server.url)
    try:
        before = state(page)
        kiosk_server.stop()
        time.sleep(1.0)  # the page is now without a server (its clock stops)
        kiosk_server.start()  # the same port, a new process that has never seen this page
        took = wait_streaming(page, LIVE_AGAIN_WITHIN_S)
        after = state(page)
        assert after is not None and before is not None
        assert after[1] != before[1], "the page should have reloaded to join the new server"
        assert took <= LIVE_AGAIN_WITHIN_S
        print(f"live again {took:.1f} s after the new server was up")
    finally:
        page.context.close()


@pytest.mark.parametrize("offline_s", [3.0, 12.0], ids=["short-drop", "longer-than-reconnect-timeout"])
def test_resumes_after_a_network_drop(browser: Browser, kiosk_server: LabwallServer, offline_s: float) -> None:
    page = open_wall(browser, kiosk_server.url)
    try:
        page.context.set_offline(True)
        page.wait_for_timeout(offline_s * 1000)
        frozen = state(page)
        page.context.set_offline(False)
        took = wait_streaming(page, LIVE_AGAIN_WITHIN_S)
        assert frozen is not None and state(page) is not None
        print(f"offline {offline_s:g} s: live again {took:.1f} s after the network came back")
    finally:
        page.context.close()


def test_a_frozen_screen_says_stale(browser: Browser, kiosk_server: LabwallServer) -> None:
    """A hung server keeps its socket open, so no message says it is gone: the page notices the
    silence itself, shows the STALE banner, and drops it when updates flow again."""
    page = open_wall(browser, kiosk_server.url)
    assert kiosk_server.proc is not None
    try:
        kiosk_server.proc.send_signal(signal.SIGSTOP)
        try:
            page.wait_for_function("() => document.documentElement.classList.contains('lw-frozen')", timeout=8000)
            banner = page.evaluate("() => getComputedStyle(document.body, '::after').content")
            assert "STALE" in banner
        finally:
            kiosk_server.proc.send_signal(signal.SIGCONT)
        page.wait_for_function("() => !document.documentElement.classList.contains('lw-frozen')", timeout=8000)
    finally:
        page.context.close()
