"""Crash recovery: kill -9 labwall under a supervisor that restarts it like systemd's
Restart=on-failure (with the unit's own RestartSec=), while a browser keeps the wall open untouched.

Prints, over N tries, the time from the kill until the open page is live again: the header clock
(`.hdr .clock`, pushed by the server every flush) has changed twice since the kill, i.e. the page is
served by the new process *and* receiving its updates. Also the time until the new process said
READY=1 (the supervisor plays systemd's NOTIFY_SOCKET, as the unit uses Type=notify).

    .venv/bin/python bench/restart_recovery.py            # 10 tries
    .venv/bin/python bench/restart_recovery.py --tries 3  # quicker
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import yaml

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "labwall.service"
LIVE_SELECTOR = ".hdr .clock"
TARGET_S = 15.0


def unit_restart_sec(unit: Path = UNIT) -> float:
    """RestartSec= from the unit file, so the bench restarts exactly as slowly as systemd would."""
    match = re.search(r"^RestartSec=(\d+(?:\.\d+)?)(ms|s)?\s*$", unit.read_text(), re.MULTILINE)
    if not match:
        return 0.1  # systemd's default
    value = float(match.group(1))
    return value / 1000 if match.group(2) == "ms" else value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Supervisor:
    """Starts main.py and restarts it after RestartSec whenever it dies of a failure (Restart=on-failure:
    a non-zero exit or a signal other than the clean-stop ones), with a NOTIFY_SOCKET to hear READY=1."""

    CLEAN_SIGNALS: ClassVar[set[int]] = {signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE}

    def __init__(self, workdir: Path, restart_sec: float | None = None,
                 args: list[str] | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.restart_sec = unit_restart_sec() if restart_sec is None else restart_sec
        self.config_path = workdir / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(
            {"server": {"bind": "127.0.0.1", "port": self.port}, "host_label": "restart-bench"}))
        self.args = args if args is not None else ["--demo"]
        self.log_path = workdir / "server.log"
        self.notify_path = str(workdir / "notify.sock")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.notify.settimeout(0.2)
        self.ready_times: list[float] = []
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._watch, daemon=True),
                         threading.Thread(target=self._listen, daemon=True)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> Supervisor:
        self._spawn()
        for thread in self._threads:
            thread.start()
        return self

    def _spawn(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
        env.update(PYTHONUNBUFFERED="1", NOTIFY_SOCKET=self.notify_path)
        with self.log_path.open("ab") as log, self._lock:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "main.py"), "--config", str(self.config_path), *self.args],
                cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, env=env,
            )
            self.starts += 1

    def _watch(self) -> None:
        while not self._stopping.is_set():
            proc = self.proc
            assert proc is not None
            code = proc.wait()
            if self._stopping.is_set():
                return
            failed = code > 0 or (code < 0 and -code not in self.CLEAN_SIGNALS)
            if not failed:
                return
            if self._stopping.wait(self.restart_sec):
                return
            self._spawn()

    def _listen(self) -> None:
        while not self._stopping.is_set():
            try:
                data = self.notify.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if "READY=1" in data.decode(errors="replace").split("\n"):
                self.ready_times.append(time.monotonic())

    def kill(self) -> float:
        """SIGKILL the current server; returns the monotonic time of the kill."""
        with self._lock:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            return time.monotonic()

    def stop(self) -> float | None:
        """SIGTERM the server as `systemctl stop` does; returns seconds until it exited (None: not up)."""
        self._stopping.set()
        took = None
        with self._lock:
            if self.proc is not None and self.proc.poll() is None:
                sent = time.monotonic()
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                    took = time.monotonic() - sent
                except subprocess.TimeoutExpired:
                    self.proc.kill()
        for thread in self._threads:
            thread.join(5)
        self.notify.close()
        return took


def clock_text(page: Any) -> str | None:
    try:
        return page.evaluate(f"document.querySelector({LIVE_SELECTOR!r})?.textContent ?? null")
    except Exception:  # the page is reloading: its execution context is gone for a moment
        return None


def wait_live(page: Any, since_value: str | None, timeout: float) -> float:
    """Wait until the clock shows two values after `since_value` (the page is fed by a live server);
    returns the monotonic time the second one was seen."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        value = clock_text(page)
        if value and value != since_value and (not seen or value != seen[-1]):
            seen.append(value)
            if len(seen) >= 2:
                return time.monotonic()
        time.sleep(0.05)
    raise TimeoutError(f"the page was not live again within {timeout} s (clock values seen: {seen})")


def measure(tries: int, restart_sec: float | None = None, timeout: float = 60.0,
            report: Any = print) -> dict[str, Any]:
    """Run `tries` kill -9 / restart cycles with one browser page left open; returns the figures."""
    from playwright.sync_api import sync_playwright

    workdir = Path(tempfile.mkdtemp(prefix="labwall-restart-"))
    supervisor = Supervisor(workdir, restart_sec).start()
    live_s: list[float] = []
    ready_s: list[float] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                         headless=True, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1920, "height": 1080})
                deadline = time.monotonic() + 60
                while True:  # first start: the port needs a moment
                    try:
                        page.goto(supervisor.url, wait_until="load", timeout=5_000)
                        break
                    except Exception:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)
                wait_live(page, None, 30)
                for attempt in range(1, tries + 1):
                    before = clock_text(page)
                    readies = len(supervisor.ready_times)
                    killed = supervisor.kill()
                    live = wait_live(page, before, timeout) - killed
                    ready = next(t for t in supervisor.ready_times[readies:]) - killed
                    live_s.append(live)
                    ready_s.append(ready)
                    report(f"try {attempt:2d}: page live again after {live:5.2f} s"
                           f" (READY=1 after {ready:5.2f} s)")
                stop_s = supervisor.stop()  # with the page still connected
            finally:
                browser.close()
    finally:
        supervisor.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "tries": tries, "restart_sec": supervisor.restart_sec, "starts": supervisor.starts, "stop_s": stop_s,
        "live_s": live_s, "ready_s": ready_s,
        "live_median_s": statistics.median(live_s), "live_max_s": max(live_s),
        "ready_median_s": statistics.median(ready_s), "ready_max_s": max(ready_s),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tries", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="2 tries: check that the bench runs")
    parser.add_argument("--restart-sec", type=float, default=None,
                        help="seconds before a restart (default: RestartSec= of systemd/labwall.service)")
    args = parser.parse_args()
    figures = measure(2 if args.quick else args.tries, args.restart_sec)
    print(f"\nkill -9 -> page live again, {figures['tries']} tries, RestartSec={figures['restart_sec']:g} s:"
          f" median {figures['live_median_s']:.2f} s, max {figures['live_max_s']:.2f} s"
          f" (target {TARGET_S:g} s)")
    print(f"kill -9 -> READY=1 from the new process: median {figures['ready_median_s']:.2f} s,"
          f" max {figures['ready_max_s']:.2f} s")
    if figures["stop_s"] is not None:
        print(f"SIGTERM -> exited, a browser connected: {figures['stop_s']:.2f} s (target 5 s)")
    return 0 if figures["live_max_s"] <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
