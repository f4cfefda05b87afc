"""systemd integration: sd_notify (READY, WATCHDOG, STATUS, STOPPING) and journal-friendly logging.

Under `Type=notify` systemd passes NOTIFY_SOCKET (and WATCHDOG_USEC when WatchdogSec= is set). Outside
systemd nothing here does anything, so `python main.py` behaves the same on a laptop.

- READY=1 is sent once uvicorn listens on its socket *and* the collectors have been started.
- WATCHDOG=1 is sent by a task on the server's event loop: a blocked loop stops the pings and
  systemd restarts the service. Parts of the app that live on the loop (the wall's flush) can add a
  `heartbeat(...)`; a heartbeat that goes silent withholds the pings too.
- STATUS= carries a one-line health summary (/healthz's answer, passed in by the web layer), re-sent
  when it changes.
- STOPPING=1 is sent as soon as SIGTERM arrives, before the graceful shutdown starts.

This module must stay cheap to import: main.py calls `configure_logging` before --check-config.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.app import Monitor

log = logging.getLogger(__name__)

STATUS_INTERVAL_S = 5.0
READY_POLL_S = 0.05
MAX_STATUS_CHARS = 200


# --- sd_notify ---------------------------------------------------------------------------------------
# A small function rather than a library: the protocol is one datagram to an AF_UNIX socket, which
# systemd documents as the stable interface and invites daemons to reimplement (sd_notify(3), Notes).
# `sdnotify` (PyPI) has had no release since 2017 and swallows every error; `systemd-python` and
# `cysystemd` are C extensions needing libsystemd headers and a compiler on the lab server.


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send `state` ("READY=1", "STATUS=…", newline-separated for several) to systemd.

    Returns True when sent, False when not running under systemd (no NOTIFY_SOCKET) or the send
    failed; a failure is logged, never raised: monitoring must not die because systemd went away.
    """
    env = os.environ if environ is None else environ
    address = env.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # Linux abstract namespace socket
    elif not address.startswith("/"):
        log.warning("NOTIFY_SOCKET=%r is not an AF_UNIX socket path; notifications disabled", address)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError as exc:
        log.warning("sd_notify %r failed: %s", state.split("\n", 1)[0], exc)
        return False
    return True


def watchdog_timeout_s(environ: Mapping[str, str] | None = None) -> float | None:
    """The watchdog timeout systemd asked for (WatchdogSec=), or None when there is none for us."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec:
        return None
    if pid and pid != str(os.getpid()):
        return None  # meant for another process (we were started by one that got it)
    try:
        value = int(usec)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not an integer", usec)
        return None
    return value / 1e6 if value > 0 else None


def ping_interval_s(timeout_s: float) -> float:
    # A third rather than sd_watchdog_enabled(3)'s "half": one late tick of a busy loop still
    # lands well inside half the timeout.
    return timeout_s / 3


# --- heartbeats: liveness of parts that run on the event loop ----------------------------------------


class Heartbeat:
    """A part of the app that must keep ticking (e.g. the wall's flush); silence withholds WATCHDOG=1."""

    def __init__(self, name: str, max_silence_s: float) -> None:
        self.name = name
        self.max_silence_s = max_silence_s
        self.last = time.monotonic()  # a fresh heartbeat gets max_silence_s to produce its first beat

    def beat(self) -> None:
        self.last = time.monotonic()

    def silent_for(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.last


_heartbeats: dict[str, Heartbeat] = {}


def heartbeat(name: str, max_silence_s: float) -> Heartbeat:
    """Register (or fetch) the heartbeat `name`; call `.beat()` on every tick, viewers or not."""
    hb = _heartbeats.get(name)
    if hb is None:
        hb = _heartbeats[name] = Heartbeat(name, max_silence_s)
    return hb


def silent_heartbeats(now: float | None = None) -> list[Heartbeat]:
    now = time.monotonic() if now is None else now
    return [hb for hb in _heartbeats.values() if hb.silent_for(now) > hb.max_silence_s]


# --- the notifier --------------------------------------------------------------------------------------


def status_line(health: dict[str, Any]) -> str:
    """One line for `systemctl status`: "ok: gpu ok, host ok" or "degraded: gpu: unavailable — …"."""
    if health.get("reasons"):
        text = f"{health['status']}: " + "; ".join(health["reasons"])
    else:
        collectors = health.get("collectors") or {}
        parts = [f"{name} {c.get('state', '?')}" for name, c in sorted(collectors.items())]
        text = f"{health.get('status', 'ok')}: " + (", ".join(parts) or "no collectors")
    text = " ".join(text.split())  # one line, whatever the reasons contained
    return text if len(text) <= MAX_STATUS_CHARS else text[: MAX_STATUS_CHARS - 1] + "…"


class ServiceNotifier:
    """Tells systemd the truth: READY once serving, WATCHDOG from the event loop, STATUS, STOPPING."""

    def __init__(
        self,
        monitor: Monitor,
        server_started: Callable[[], bool],
        environ: Mapping[str, str] | None = None,
        health: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.monitor = monitor
        self.server_started = server_started
        self.health = health or (lambda: {"status": "ok"})  # the web layer passes /healthz's answer
        self.environ = dict(os.environ if environ is None else environ)
        self.enabled = bool(self.environ.get("NOTIFY_SOCKET"))
        timeout = watchdog_timeout_s(self.environ)
        self.ping_s = ping_interval_s(timeout) if timeout else None
        self.ready_sent = False
        self.stopping_sent = False
        self.last_status: str | None = None
        self._withheld: list[str] = []

    def send(self, state: str) -> bool:
        return notify(state, self.environ) if self.enabled else False

    def current_status(self) -> str:
        return status_line(self.health())

    def is_ready(self) -> bool:
        """The HTTP server listens (uvicorn sets `started` after binding) and every collector runs."""
        return (bool(self.server_started()) and self.monitor.started
                and all(thread.alive for thread in self.monitor.threads))

    async def run(self) -> None:
        """Runs on the server's event loop for the whole life of the process."""
        if not self.enabled:
            return
        now = time.monotonic()
        next_ping = now
        next_status = now
        while True:
            now = time.monotonic()
            if not self.ready_sent and self.is_ready():
                self.last_status = self.current_status()
                self.ready_sent = True  # once: a failed send is logged by notify() and not retried
                if self.send(f"READY=1\nSTATUS={self.last_status}"):
                    log.info("ready: told systemd (%s)", self.last_status)
                next_status = now + STATUS_INTERVAL_S
            if self.ping_s is not None and now >= next_ping:
                self.ping()
                # Steady cadence; after a stall, count from now rather than catching up in a burst.
                next_ping = next_ping + self.ping_s if next_ping + self.ping_s > now else now + self.ping_s
            if self.ready_sent and not self.stopping_sent and now >= next_status:
                self.update_status()
                next_status = now + STATUS_INTERVAL_S
            wake = [next_status] if self.ready_sent else [now + READY_POLL_S]
            if self.ping_s is not None:
                wake.append(next_ping)
            await asyncio.sleep(max(0.0, min(wake) - time.monotonic()))

    def ping(self) -> None:
        silent = silent_heartbeats()
        if silent:
            names = [hb.name for hb in silent]
            if names != self._withheld:  # log each new silence once, not every ping
                log.error("withholding the systemd watchdog ping: %s",
                          "; ".join(f"{hb.name} silent for {hb.silent_for():.0f} s" for hb in silent))
            self._withheld = names
            return
        if self._withheld:
            log.info("heartbeats back; watchdog pings resume")
            self._withheld = []
        self.send("WATCHDOG=1")

    def update_status(self) -> None:
        status = self.current_status()
        if status != self.last_status:
            self.last_status = status
            self.send(f"STATUS={status}")

    def stopping(self) -> None:
        if self.stopping_sent or not self.enabled:
            return
        self.stopping_sent = True
        self.send("STOPPING=1\nSTATUS=stopping")

    def chain_sigterm(self) -> None:
        """Send STOPPING=1 the moment SIGTERM arrives, then let uvicorn's handler shut down as usual."""
        previous = signal.getsignal(signal.SIGTERM)
        if not callable(previous):
            return  # uvicorn did not install a handler (not the main thread): on_shutdown still sends it

        def on_sigterm(signum: int, frame: Any) -> None:
            self.stopping()
            previous(signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm)


def install_service_hooks(app: Any, monitor: Monitor, health: Callable[[], dict[str, Any]]) -> ServiceNotifier:
    """Wire the notifier into NiceGUI's start-up and shutdown; call before ui.run. `health()` is
    /healthz's answer, the source of the STATUS= line."""
    from nicegui import background_tasks
    from nicegui.server import Server

    def server_started() -> bool:
        server = getattr(Server, "instance", None)
        return bool(server is not None and server.started)

    notifier = ServiceNotifier(monitor, server_started, health=health)

    def on_startup() -> None:
        if journal_stream_active():
            route_uvicorn_logs_to_root()
        with contextlib.suppress(ValueError):  # signal.signal outside the main thread
            notifier.chain_sigterm()
        background_tasks.create(notifier.run(), name="systemd notifier")

    app.on_startup(on_startup)
    app.on_shutdown(notifier.stopping)
    return notifier


# --- logging -------------------------------------------------------------------------------------------

_SYSLOG_PRIORITY = {
    logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2,
}


def syslog_priority(levelno: int) -> int:
    for level in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO):
        if levelno >= level:
            return _SYSLOG_PRIORITY[level]
    return 7


class JournalFormatter(logging.Formatter):
    """Prefixes every line with "<N>" (sd-daemon(3)); journald reads it as the line's priority."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines() or [""])


def journal_stream_active(stream: Any = None) -> bool:
    """True when stderr is connected to the journal (JOURNAL_STREAM names its device and inode)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    if not value:
        return False
    try:
        dev, ino = (int(part) for part in value.split(":", 1))
        st = os.fstat((stream or sys.stderr).fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return st.st_dev == dev and st.st_ino == ino


def configure_logging(level: str = "info") -> None:
    """Levels everywhere: "<N>name: message" for journald, "LEVEL name: message" on a terminal."""
    handler = logging.StreamHandler(sys.stderr)
    if journal_stream_active():
        # journald adds time, host and unit itself.
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


def route_uvicorn_logs_to_root() -> None:
    """uvicorn installs its own handlers (no priority prefix); send its records through ours."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
