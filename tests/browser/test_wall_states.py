"""The wall says what is wrong instead of going blank: no GPU driver, a GPU lost while watching."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_support import open_wall, start_server, write_json
from playwright.sync_api import Browser

pytestmark = pytest.mark.browser
HAS_DRIVER = Path("/proc/driver/nvidia/version").exists()


@pytest.mark.skipif(HAS_DRIVER, reason="this machine has an NVIDIA driver: the no-driver notice cannot show")
def test_no_driver_says_why(browser: Browser, tmp_path: Path) -> None:
    server = start_server(tmp_path, {"gpu": {"backend": "nvml"}})
    try:
        page = open_wall(browser, server.url)
        page.wait_for_function("() => document.querySelector('.nogpu-r')?.textContent === 'no NVIDIA driver found'",
                               timeout=10_000)
        assert page.text_content(".nogpu-t") == "No GPUs on this host"
        assert page.evaluate("() => document.querySelectorAll('.wall .tile').length") == 0
        assert page.evaluate("() => getComputedStyle(document.querySelector('.kpis')).display") == "none"
        assert page.evaluate("() => getComputedStyle(document.querySelector('.badge.sim')).display") == "none"
        page.context.close()
    finally:
        server.stop()


def test_a_gpu_lost_while_watching_is_marked(browser: Browser, tmp_path: Path) -> None:
    scenario = {"gpus": [{"name": "NVIDIA A100-SXM4-80GB", "processes": []} for _ in range(2)],
                "events": [{"at_s": 4, "gpu": 1, "event": "lost"}]}
    config = {"gpu": {"backend": "simulated", "simulated_scenario": str(write_json(tmp_path / "s.json", scenario))}}
    server = start_server(tmp_path, config)
    try:
        page = open_wall(browser, server.url)
        page.wait_for_function("() => document.querySelectorAll('.wall .tile')[1].classList.contains('lost')",
                               timeout=15_000)
        tiles = page.evaluate("() => [...document.querySelectorAll('.wall .tile')].map(t => t.innerText)")
        assert "LOST" in tiles[1] and "LOST" not in tiles[0]
        page.wait_for_function("() => document.querySelector('.ev-log').innerText.includes('GPU 1 lost')",
                               timeout=5_000)
        page.context.close()
    finally:
        server.stop()
