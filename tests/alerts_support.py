"""A lab on a fake clock for the alert tests: the real GpuCollector over the NVML test double, a
real Store and the real AlertEngine, ticked by hand (no sleeps: time is injected)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from collectors.gpu.collector import GpuCollector
from collectors.gpu.nvml import NvmlBackend
from collectors.gpu.processes import ProcessLookup
from collectors.gpu.redact import Redactor
from monitor.alerts.engine import AlertEngine
from monitor.config import Config, parse_config
from monitor.model.store import Store

try:  # tests/ is on sys.path under pytest's default import mode
    from fake_nvml import FakeNvml
except ImportError:  # pragma: no cover
    from tests.fake_nvml import FakeNvml

HOST = "testhost"
T0 = 1_700_000_000.0


def make_config(alerts: dict[str, Any] | None = None, **sections: Any) -> Config:
    return parse_config({"alerts": alerts or {}, **sections}, "test")


class Lab:
    """Ticks the GPU collector and the alert engine together, one fake second at a time."""

    def __init__(self, config: Config | None = None, count: int = 4, notifier: Any | None = None) -> None:
        self.t = T0
        self.config = config or make_config()
        self.fake = FakeNvml(count)
        self.store = Store(HOST)
        lookup = ProcessLookup(Redactor(), resolver=self.fake.process_info)
        self.gpu = GpuCollector(
            self.store, 1.0, NvmlBackend(self.fake), processes=lookup, clock=lambda: self.t, pcie_per_tick=64
        )
        self.gpu.setup()
        self.engine = AlertEngine(self.store, self.config, notifier=notifier)
        self.engine.setup()
        self.gpu_running = True

    def tick(self, seconds: int = 1) -> None:
        """`seconds` ticks of one second: the GPU is read, then the engine evaluates."""
        for _ in range(seconds):
            self.t += 1.0
            if self.gpu_running:
                self.gpu.collect(self.t)
            self.engine.collect(self.t)

    def doc(self) -> dict[str, Any]:
        found = self.store.state("alerts")
        assert found is not None
        json.dumps(found[1], allow_nan=False)
        return found[1]

    def active(self) -> dict[str, dict[str, Any]]:
        return {a["id"]: a for a in self.doc()["active"]}

    def pending(self) -> dict[str, dict[str, Any]]:
        return {a["id"]: a for a in self.doc()["pending"]}

    def recent(self) -> list[dict[str, Any]]:
        return self.doc()["recent"]

    def alert_events(self) -> list[tuple[str, str]]:
        return [(e.level, e.text) for e in self.store.events.read_after(0) if e.source == "alerts"]


class Receiver:
    """A real HTTP receiver on loopback that records every POST; `statuses` scripts the answers
    (then 200), `hang` makes each request wait until `release` is set."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.hang = False
        self.entered = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length))
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.requests.append({"headers": dict(self.headers), "body": body, "status": status})
                receiver.entered.set()
                if receiver.hang:
                    receiver.release.wait(30)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def delivered(self) -> list[dict[str, Any]]:
        """The requests answered with a 2xx."""
        with self.lock:
            return [r for r in self.requests if 200 <= r["status"] < 300]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
