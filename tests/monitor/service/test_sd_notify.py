"""Plays systemd for a real labwall process: NOTIFY_SOCKET + WATCHDOG_USEC, then READY, WATCHDOG,
STATUS and STOPPING as the service manager would see them. Plus the small pieces of monitor.service.systemd.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import ROOT, LabwallServer, wait_for

from monitor.service import systemd as service
from monitor.web.api import health as api_health

WATCHDOG_USEC = 2_400_000  # the harness's WatchdogSec=2.4s: pings due at least every 1.2 s


class FakeSystemd:
    """The service manager's end of NOTIFY_SOCKET: records every datagram with its arrival time."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []
        self.port: int | None = None
        self.port_answered_at_ready: bool | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.monotonic()
            text = data.decode()
            if "READY=1" in text.split("\n") and self.port is not None:
                # Checked the instant READY arrives: the port must already answer.
                self.port_answered_at_ready = port_answers(self.port)
            with self._lock:
                self.messages.append((now, text))

    def lines(self, name: str) -> list[tuple[float, str]]:
        """(arrival time, value) of every `NAME=value` line received so far."""
        with self._lock:
            messages = list(self.messages)
        found = []
        for t, text in messages:
            for line in text.split("\n"):
                key, _, value = line.partition("=")
                if key == name:
                    found.append((t, value))
        return found

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def fake_systemd() -> Iterator[FakeSystemd]:
    # A short directory of our own: AF_UNIX paths are limited to 108 bytes, pytest's tmp_path can be longer.
    directory = tempfile.mkdtemp(prefix="labwall-notify-")
    manager = FakeSystemd(os.path.join(directory, "notify.sock"))
    yield manager
    manager.close()
    shutil.rmtree(directory, ignore_errors=True)


def systemd_env(manager: FakeSystemd, watchdog_usec: int | None = WATCHDOG_USEC) -> dict[str, str]:
    env = {"NOTIFY_SOCKET": manager.address}
    if watchdog_usec:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    return env


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


# Runs main.py with one extra route whose handler blocks the event loop (time.sleep in an async
# handler), so the test can hang the loop without any test hook in the shipped code.
BLOCKABLE_MAIN = f"""
import sys, time
sys.path.insert(0, {str(ROOT)!r})
from nicegui import app

@app.get("/_test/block_loop")
async def block_loop(seconds: float) -> dict:
    time.sleep(seconds)
    return {{"blocked_s": seconds}}

import main
sys.exit(main.main(sys.argv[1:]))
"""


class BlockableServer(LabwallServer):
    def start(self, wait: bool = True) -> BlockableServer:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", BLOCKABLE_MAIN, "--config", str(self.config_path), *self.args],
            cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, env=self.env,
        )
        if wait:
            self.wait_ready()
        return self


@pytest.fixture
def servers() -> Iterator[list[LabwallServer]]:
    started: list[LabwallServer] = []
    yield started
    for server in started:
        server.stop()


# --- end to end -------------------------------------------------------------------------------------


def test_ready_comes_after_the_port_answers_then_watchdog_and_status(
    tmp_path: Path, fake_systemd: FakeSystemd, servers: list[LabwallServer]
) -> None:
    server = LabwallServer(tmp_path, args=["--demo"], env=systemd_env(fake_systemd))
    # stderr goes to the log file; naming it in JOURNAL_STREAM makes labwall log as it would to journald.
    server.log_path.touch()
    st = os.stat(server.log_path)
    server.env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    fake_systemd.port = server.port
    servers.append(server)
    server.start(wait=False)

    ready = wait_for(lambda: fake_systemd.lines("READY"), 30, what="READY=1")
    assert fake_systemd.port_answered_at_ready is True, "READY=1 was sent before the HTTP port answered"
    # The collectors had been started by then: Monitor.start logs this event before READY can go out.
    events = server.get("/api/events").json()["events"]
    assert any("labwall started" in e["text"] for e in events), events
    status = fake_systemd.lines("STATUS")
    assert status and status[0][0] == ready[0][0], "READY=1 carries the first STATUS= line"
    assert status[0][1].split(":")[0] in ("ok", "degraded") and "\n" not in status[0][1]

    # Watchdog pings keep coming, never more than WATCHDOG_USEC/2 apart.
    start = time.monotonic()
    wait_for(lambda: len([t for t, _ in fake_systemd.lines("WATCHDOG") if t > start]) >= 6, 15,
             what="6 watchdog pings")
    # (systemd arms the watchdog at READY=1; pings sent during start-up are a bonus.)
    pings = [t for t, value in fake_systemd.lines("WATCHDOG") if value == "1" and t >= ready[0][0]]
    assert max(gaps(pings)) <= WATCHDOG_USEC / 2e6, gaps(pings)
    assert server.proc is not None and server.proc.poll() is None

    # Journal-style logging: every line carries a syslog priority prefix.
    log_lines = [line for line in server.logs().splitlines() if line.startswith("<")]
    assert any(line.startswith("<6>monitor.service.systemd: ready") for line in log_lines), server.logs()[-2000:]


def test_watchdog_pings_stop_while_the_event_loop_is_blocked(
    tmp_path: Path, fake_systemd: FakeSystemd, servers: list[LabwallServer]
) -> None:
    server = BlockableServer(tmp_path, args=["--demo"], env=systemd_env(fake_systemd))
    servers.append(server)
    server.start()
    wait_for(lambda: len(fake_systemd.lines("WATCHDOG")) >= 3, 10, what="first watchdog pings")

    block_s = 3.0
    before = time.monotonic()
    response = httpx.get(server.url + "/_test/block_loop", params={"seconds": block_s}, timeout=block_s + 10)
    after = time.monotonic()
    assert response.status_code == 200

    wait_for(lambda: any(t > after for t, _ in fake_systemd.lines("WATCHDOG")), 5,
             what="pings resuming after the loop is free again")
    pings = [t for t, _ in fake_systemd.lines("WATCHDOG") if t > before - 1]
    # No ping while the loop was blocked: one gap spans (nearly) the whole block.
    assert max(gaps(pings)) >= block_s - 0.3, gaps(pings)
    assert not [t for t in pings if before + WATCHDOG_USEC / 2e6 < t < after - 0.3], "pinged while blocked"


@pytest.mark.browser
def test_sigterm_sends_stopping_and_exits_within_5_s_with_a_browser_connected(
    tmp_path: Path, fake_systemd: FakeSystemd, servers: list[LabwallServer]
) -> None:
    from playwright.sync_api import sync_playwright

    server = LabwallServer(tmp_path, args=["--demo"], env=systemd_env(fake_systemd))
    servers.append(server)
    server.start()
    wait_for(lambda: fake_systemd.lines("READY"), 30, what="READY=1")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                     headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(server.url + "/")
            # An open websocket is what makes a graceful shutdown slow; make sure there is one.
            page.wait_for_function("window.did_handshake === true", timeout=15_000)

            assert server.proc is not None
            sent = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            code = server.proc.wait(10)
            took = time.monotonic() - sent
        finally:
            browser.close()

    stopping = fake_systemd.lines("STOPPING")
    assert stopping, "no STOPPING=1"
    assert stopping[0][0] - sent < 1.0, "STOPPING=1 should go out as soon as SIGTERM arrives"
    assert took < 5.0, f"took {took:.1f} s to stop"
    # uvicorn re-raises SIGTERM after its graceful shutdown; systemd counts that as a clean stop.
    assert code in (0, -signal.SIGTERM), (code, server.logs()[-2000:])
    assert "Traceback" not in server.logs()


def test_bad_config_exits_non_zero_naming_the_key_and_never_signals_ready(
    tmp_path: Path, fake_systemd: FakeSystemd
) -> None:
    server = LabwallServer(tmp_path, config={"gpu": {"interval_s": -1}}, env=systemd_env(fake_systemd))
    server.start(wait=False)
    assert server.proc is not None
    code = server.proc.wait(30)
    assert code != 0
    assert "gpu.interval_s" in server.logs()
    assert not fake_systemd.lines("READY")

    # The same check as the unit's ExecStartPre, which is what `systemctl status` then shows.
    check = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--config", str(server.config_path), "--check-config"],
        capture_output=True, text=True, timeout=30,
    )
    assert check.returncode == 1
    assert "gpu.interval_s" in check.stderr and "must be > 0" in check.stderr


# --- the pieces -----------------------------------------------------------------------------------------


def test_notify_reaches_an_abstract_socket_and_is_a_no_op_outside_systemd() -> None:
    manager = FakeSystemd(f"@labwall-test-{uuid.uuid4().hex}")
    try:
        assert service.notify("STATUS=hello", {"NOTIFY_SOCKET": manager.address}) is True
        wait_for(lambda: manager.lines("STATUS") and manager.lines("STATUS")[0][1] == "hello", 2,
                 what="the datagram")
    finally:
        manager.close()
    assert service.notify("READY=1", {}) is False
    assert service.notify("READY=1", {"NOTIFY_SOCKET": "/nonexistent/notify.sock"}) is False


def test_watchdog_timeout_is_only_ours_when_the_pid_matches() -> None:
    assert service.watchdog_timeout_s({}) is None
    assert service.watchdog_timeout_s({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert service.watchdog_timeout_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 30.0
    assert service.watchdog_timeout_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert service.watchdog_timeout_s({"WATCHDOG_USEC": "soon"}) is None
    assert service.ping_interval_s(30.0) <= 15.0


def test_status_line_is_one_short_line() -> None:
    ok = {"status": "ok", "reasons": [], "collectors": {"host": {"state": "ok"}, "gpu": {"state": "ok"}}}
    assert service.status_line(ok) == "ok: gpu ok, host ok"
    reasons = ["gpu: unavailable — NVML\nnot found", "x" * 300]
    bad = {"status": "degraded", "reasons": reasons, "collectors": {}}
    line = service.status_line(bad)
    assert line.startswith("degraded: gpu: unavailable — NVML not found;")
    assert "\n" not in line and len(line) <= service.MAX_STATUS_CHARS


def test_journal_formatter_prefixes_every_line_with_its_priority() -> None:
    formatter = service.JournalFormatter("%(name)s: %(message)s")
    record = logging.LogRecord("labwall", logging.ERROR, __file__, 1, "first\nsecond", None, None)
    assert formatter.format(record) == "<3>labwall: first\n<3>second"
    assert service.syslog_priority(logging.WARNING) == 4
    assert service.syslog_priority(logging.DEBUG) == 7


def test_journal_stream_is_recognised_by_device_and_inode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (tmp_path / "stream").open("w") as stream:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert service.journal_stream_active(stream)
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino + 1}")
        assert not service.journal_stream_active(stream)
    monkeypatch.delenv("JOURNAL_STREAM")
    assert not service.journal_stream_active()


def test_a_silent_heartbeat_withholds_the_watchdog_ping(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[str] = []
    monkeypatch.setattr(service, "_heartbeats", {})
    notifier = service.ServiceNotifier(None, lambda: True, {"NOTIFY_SOCKET": "@unused"})  # type: ignore[arg-type]
    monkeypatch.setattr(notifier, "send", sent.append)
    hb = service.heartbeat("wall-flush", max_silence_s=5.0)
    notifier.ping()
    assert sent == ["WATCHDOG=1"]
    hb.last -= 10
    notifier.ping()
    assert sent == ["WATCHDOG=1"], "a silent heartbeat must stop the pings"
    hb.beat()
    notifier.ping()
    assert sent == ["WATCHDOG=1", "WATCHDOG=1"]



class _Thread:
    alive = True


class _Store:
    host = "h"

    def health(self) -> dict[str, dict[str, str]]:
        return {"host": {"state": "ok"}}


class _Monitor:
    """Just what the notifier reads of a Monitor."""

    def __init__(self) -> None:
        self.started = False
        self.threads = [_Thread()]
        self.store = _Store()


def test_ready_waits_for_both_the_listening_port_and_the_collectors() -> None:
    manager = FakeSystemd(f"@labwall-test-{uuid.uuid4().hex}")
    monitor = _Monitor()
    listening = threading.Event()
    notifier = service.ServiceNotifier(monitor, listening.is_set,  # type: ignore[arg-type]
                                       {"NOTIFY_SOCKET": manager.address},
                                       health=lambda: api_health(monitor.store))  # type: ignore[arg-type]
    assert not notifier.is_ready()
    listening.set()
    assert not notifier.is_ready(), "the port listens, the collectors have not started"
    monitor.started = True
    monitor.threads[0].alive = False
    assert not notifier.is_ready(), "a collector thread is dead"
    monitor.threads[0].alive = True
    assert notifier.is_ready()

    async def until_ready() -> None:
        task = asyncio.create_task(notifier.run())
        deadline = time.monotonic() + 5
        while not manager.lines("READY") and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        task.cancel()

    try:
        asyncio.run(until_ready())
        assert manager.lines("READY") and manager.lines("STATUS")[0][1] == "ok: host ok"
        assert not manager.lines("WATCHDOG"), "no WATCHDOG_USEC, no pings"
    finally:
        manager.close()
