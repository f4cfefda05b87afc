"""Server cost of many viewers: CPU and RSS of the labwall process, and how late page ticks run,
with 1, 10 and 50 viewers, then 50 viewers plus 2 real Chromium pages.

A lightweight viewer does what a browser does on the wire and nothing else: it loads the page
(the server builds that viewer's elements), connects to NiceGUI's socket.io endpoint with the
page's client id, answers the page's JavaScript requests and acknowledges messages. It renders
nothing, so the figures are the server's own cost. 8 simulated GPUs + host, 1 s tick, charts full.

    .venv/bin/python bench/viewers.py [--quick] [--seconds N]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import socketio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from wall_bytes import Harness, launch, stop_on_sigterm, wait_live

TARGET_CPU_PERCENT = 25.0
CLIENT_ID = re.compile(r"'client_id': '([0-9a-f-]+)'")


class LightViewer:
    """One viewer without a browser: the socket.io conversation of an open wall page."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=False)
        self.client_id = ""
        self.next_message_id = 0
        self.bytes = 0
        self.messages = 0

    async def open(self, http: httpx.AsyncClient) -> None:
        html = (await http.get(self.url + "/")).text
        found = CLIENT_ID.search(html)
        if not found:
            raise RuntimeError("no client id in the page")
        self.client_id = found.group(1)

        async def run_javascript(msg: dict[str, Any]) -> None:
            self._count(msg)
            if msg.get("request_id"):  # the page asks whether its charts are drawn: they are
                await self.sio.emit("javascript_response",
                                    {"request_id": msg["request_id"], "client_id": self.client_id, "result": True})

        self.sio.on("run_javascript", run_javascript)
        self.sio.on("update", self._count)
        self.sio.on("load_js_components", self._count)
        query = (f"client_id={self.client_id}&next_message_id=0&implicit_handshake=true"
                 f"&document_id={uuid.uuid4()}&tab_id={uuid.uuid4()}")
        await self.sio.connect(f"{self.url}?{query}", socketio_path="/_nicegui_ws/socket.io",
                               transports=["websocket"])

    def _count(self, msg: dict[str, Any]) -> None:
        self.messages += 1
        self.bytes += len(str(msg))
        if isinstance(msg, dict) and isinstance(msg.get("_id"), int):
            self.next_message_id = msg["_id"] + 1

    async def ack(self) -> None:
        if self.sio.connected:
            await self.sio.emit("ack", {"client_id": self.client_id, "next_message_id": self.next_message_id})


class Crowd:
    """Light viewers on their own event loop thread (Playwright's sync API owns the main thread)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.viewers: list[LightViewer] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="light-viewers", daemon=True)
        self.thread.start()
        self._acks = asyncio.run_coroutine_threadsafe(self._ack_forever(), self.loop)

    def grow_to(self, count: int) -> None:
        asyncio.run_coroutine_threadsafe(self._grow(count), self.loop).result(timeout=300)

    async def _grow(self, count: int) -> None:
        async with httpx.AsyncClient(timeout=60) as http:
            while len(self.viewers) < count:
                viewer = LightViewer(self.url)
                await viewer.open(http)
                self.viewers.append(viewer)

    async def _ack_forever(self) -> None:
        while True:
            await asyncio.sleep(3)
            for viewer in list(self.viewers):
                await viewer.ack()

    def close(self) -> None:
        async def disconnect() -> None:
            self._acks.cancel()
            for viewer in self.viewers:
                await viewer.sio.disconnect()

        asyncio.run_coroutine_threadsafe(disconnect(), self.loop).result(timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)


def measure(server: Harness, seconds: float) -> dict[str, Any]:
    server.stats()  # restart the tick counters
    first = server.stats()
    time.sleep(seconds)
    last = server.stats()
    return {
        "cpu": 100 * (last["cpu_s"] - first["cpu_s"]) / (last["time"] - first["time"]),
        "rss": last["rss"],
        "clients": last["clients"],
        "ticks": last["ticks"],
        "frames": last["frames"] - first["frames"],
    }


def report(label: str, m: dict[str, Any]) -> None:
    t = m["ticks"]
    print(f"{label:<24} server CPU {m['cpu']:5.1f} % of one core, RSS {m['rss'] / 1e6:6.1f} MB, "
          f"{t['ticks']} page ticks, longest gap between ticks {t['max_gap_s']:.2f} s, "
          f"{t['late']} later than 2 x interval, worst start delay {t['max_delay_s'] * 1000:.0f} ms; "
          f"{m['frames']} shared frames computed", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 s per step, up to 5 light viewers + 1 browser")
    parser.add_argument("--seconds", type=float, help="measuring time per step (default 30)")
    args = parser.parse_args()
    stop_on_sigterm()
    seconds = args.seconds or (5.0 if args.quick else 30.0)
    steps = (1, 5) if args.quick else (1, 10, 50)
    browsers = 1 if args.quick else 2

    from playwright.sync_api import sync_playwright

    print(f"viewers: 8 simulated GPUs + host, 1 s tick, charts full (600 points), {seconds:g} s per step; "
          f"{psutil.cpu_count()} CPUs here, the viewers run on the same machine")
    with Harness(history=600) as server:
        idle = measure(server, seconds)
        report("0 viewers", idle)
        crowd = Crowd(server.url)
        try:
            results = {}
            for count in steps:
                crowd.grow_to(count)
                time.sleep(3)  # let the new pages draw and fall into step
                results[count] = measure(server, seconds)
                report(f"{count} light viewer{'s' if count > 1 else ''}", results[count])
            with sync_playwright() as p:
                browser = launch(p)
                pages = []
                for _ in range(browsers):
                    page = browser.new_page(viewport={"width": 1920, "height": 1080})
                    page.goto(server.url)
                    wait_live(page)
                    pages.append(page)
                combined = measure(server, seconds)
                report(f"{steps[-1]} light + {browsers} Chromium", combined)
                browser.close()
        finally:
            crowd.close()
    top = results[steps[-1]]
    per_viewer = (top["cpu"] - idle["cpu"]) / steps[-1]
    print(f"server CPU per extra viewer: {per_viewer:.2f} % of one core; RSS per viewer: "
          f"{(top['rss'] - idle['rss']) / steps[-1] / 1e6:.2f} MB")
    print(f"at {steps[-1]} light + {browsers} Chromium: {combined['cpu']:.1f} % of one core "
          f"(target <= {TARGET_CPU_PERCENT:.0f} % at 50), {combined['ticks']['late']} ticks later than 2 x interval "
          f"(target 0)")


if __name__ == "__main__":
    main()
