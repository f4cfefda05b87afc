"""Lightweight wall viewers for the benchmarks: real socket.io clients, no browser.

A lightweight viewer does what a browser does on the wire and nothing else: it loads the page
(the server builds that viewer's elements), connects to NiceGUI's socket.io endpoint with the
page's client id, answers the page's JavaScript requests and acknowledges messages. It renders
nothing, so what it costs the server is the server's own cost of a viewer.

`Crowd` keeps a growing set of viewers connected (bench/viewers.py); `churn` opens and closes
viewers again and again (bench/soak.py). Both run on their own event loop thread, because
Playwright's sync API owns the main thread of the benchmarks that also drive a browser.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import socketio

CLIENT_ID = re.compile(r"'client_id': '([0-9a-f-]+)'")
T = TypeVar("T")


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
            if msg.get("request_id") and self.sio.connected:  # the page asks whether its charts are drawn
                await self.sio.emit("javascript_response",
                                    {"request_id": msg["request_id"], "client_id": self.client_id, "result": True})

        self.sio.on("run_javascript", run_javascript)
        self.sio.on("update", self._count)
        self.sio.on("load_js_components", self._count)
        query = (f"client_id={self.client_id}&next_message_id=0&implicit_handshake=true"
                 f"&document_id={uuid.uuid4()}&tab_id={uuid.uuid4()}")
        # 20 s to join, as a browser's socket.io client allows (python-socketio's default is 1 s)
        await self.sio.connect(f"{self.url}?{query}", socketio_path="/_nicegui_ws/socket.io",
                               transports=["websocket"], wait_timeout=20)

    def _count(self, msg: dict[str, Any]) -> None:
        self.messages += 1
        self.bytes += len(str(msg))
        if isinstance(msg, dict) and isinstance(msg.get("_id"), int):
            self.next_message_id = msg["_id"] + 1

    async def ack(self) -> None:
        if self.sio.connected:
            await self.sio.emit("ack", {"client_id": self.client_id, "next_message_id": self.next_message_id})

    async def close(self) -> None:
        await self.sio.disconnect()


class ViewerLoop:
    """An asyncio loop on its own daemon thread; `call` runs a coroutine there and waits for it."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Crowd(ViewerLoop):
    """A set of light viewers that only grows, acknowledging what they received every 3 s."""

    def __init__(self, url: str) -> None:
        super().__init__("light-viewers")
        self.url = url
        self.viewers: list[LightViewer] = []
        self._acks = asyncio.run_coroutine_threadsafe(self._ack_forever(), self.loop)

    def grow_to(self, count: int) -> None:
        self.call(self._grow(count), timeout=300)

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
                await viewer.close()

        self.call(disconnect(), timeout=60)
        self.stop()


@dataclass
class ChurnResult:
    cycles: int = 0
    updates: int = 0  # messages the viewers received while connected
    failures: list[str] = field(default_factory=list)


async def churn(url: str, cycles: int, concurrency: int, hold_s: tuple[float, float],
                seed: int = 1) -> ChurnResult:
    """`cycles` viewers in all, `concurrency` at a time: each opens the page, stays connected for a
    random time within `hold_s` (receiving the page's updates), acknowledges and disconnects."""
    result = ChurnResult()
    rng = random.Random(seed)
    todo = iter(range(cycles))

    async def worker(http: httpx.AsyncClient) -> None:
        for _ in todo:
            viewer = LightViewer(url)
            try:
                await viewer.open(http)
                await asyncio.sleep(rng.uniform(*hold_s))  # a viewer that looks for a while, then leaves
                await viewer.ack()
                result.updates += viewer.messages
            except Exception as exc:  # counted and reported: a soak must finish to show its figures
                result.failures.append(f"{type(exc).__name__}: {exc}")
            finally:
                await viewer.close()
                result.cycles += 1

    async with httpx.AsyncClient(timeout=60) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return result
