"""Webhook notifications: a POST with a JSON body when an alert is raised and when it clears.

The engine only appends to a bounded queue (full: the oldest notification is dropped and counted);
one daemon thread sends, retrying with exponential back-off on connection errors, timeouts, 5xx,
408 and 429, so a slow or dead receiver never blocks the engine or the wall. An outage is logged as
one event (not one per attempt), and its end as another. Standard library only (urllib).

format "slack" (also Mattermost's incoming webhooks): {"text", "attachments": [{"color", "title",
"text", "fields", "footer", "ts"}]}; text from runs and processes is escaped so a run named
"<!channel>" or "@here" pings nobody. format "json": {"event", "host", "alert": {...}}.
Every POST carries X-Labwall-Alert (the alert id, URL-quoted), X-Labwall-Transition
(raised/cleared) and X-Labwall-Delivery (unique per transition: the same on each retry).
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from monitor.config import WebhookConfig

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 300.0
RETRY_STATUS = {408, 429}
COLORS = {"critical": "#d7263d", "warning": "#f0a202", "cleared": "#2e9e5b"}


class EventSink(Protocol):
    def add(self, level: Any, source: str, text: str, time: float | None = None) -> Any: ...


@dataclass(slots=True)
class Delivery:
    kind: str  # "raised" | "cleared"
    alert: dict[str, Any]
    queued_at: float


# -- payloads ---------------------------------------------------------------------------------------
def _escape(text: str) -> str:
    """Slack's three control characters, and @-mentions broken by a zero-width space."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"@(?=\w)", "@\u200b", text)


def _utc(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t)) if t is not None else "—"


def slack_payload(kind: str, alert: dict[str, Any], host: str) -> dict[str, Any]:
    severity = alert.get("severity", "warning")
    cleared = kind == "cleared"
    icon = ":white_check_mark:" if cleared else ":rotating_light:" if severity == "critical" else ":warning:"
    label = "RESOLVED" if cleared else severity.upper()
    title = _escape(str(alert.get("title") or alert.get("id")))
    text = f"{icon} [{label}] {title} on {_escape(host)}"
    body = _escape(str(alert.get("message") or ""))
    fields = [
        {"title": "Severity", "value": severity, "short": True},
        {"title": "Host", "value": _escape(host), "short": True},
        {"title": "Raised", "value": _utc(alert.get("raised_at")), "short": True},
    ]
    if cleared:
        fields.append({"title": "Cleared", "value": _utc(alert.get("cleared_at")), "short": True})
    attachment = {
        "fallback": text,
        "color": COLORS["cleared" if cleared else severity] if severity in COLORS else COLORS["warning"],
        "title": title,
        "text": body,
        "fields": fields,
        "footer": f"labwall · {_escape(str(alert.get('rule')))}",
        "ts": int((alert.get("cleared_at") if cleared else alert.get("raised_at")) or time.time()),
    }
    return {"text": text, "attachments": [attachment]}


def build_payload(fmt: str, kind: str, alert: dict[str, Any], host: str) -> dict[str, Any]:
    if fmt == "json":
        return {"event": kind, "host": host, "alert": alert}
    return slack_payload(kind, alert, host)


# -- sender -----------------------------------------------------------------------------------------
class WebhookNotifier:
    """Sends queued notifications from its own thread; `notify` never blocks on the network."""

    def __init__(
        self,
        config: WebhookConfig,
        events: EventSink,
        host: str,
        opener: Callable[..., Any] = urllib.request.urlopen,
    ) -> None:
        if not config.url:
            raise ValueError("webhook url is not set")
        self.config = config
        self.url: str = config.url
        self.events = events
        self.host = host
        self.opener = opener
        self._queue: deque[Delivery] = deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy = False
        self._failing = False  # an outage is under way: its first failure was logged
        self._dropping = False
        self.counts = {"sent": 0, "failed": 0, "dropped": 0, "retries": 0}

    # -- engine side ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="alerts-webhook", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end; never waits on a request in flight (the thread is a daemon)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def join(self, timeout: float) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    def notify(self, kind: str, alert: dict[str, Any]) -> None:
        dropped = False
        with self._cond:
            if len(self._queue) >= self.config.queue_size:
                self._queue.popleft()
                self.counts["dropped"] += 1
                dropped, first = True, not self._dropping
                self._dropping = True
            self._queue.append(Delivery(kind, alert, time.time()))
            self._cond.notify()
        if dropped and first:
            self.events.add("warning", "alerts", "webhook queue full: dropping the oldest notifications")

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {**self.counts, "queued": len(self._queue) + (1 if self._busy else 0), "failing": self._failing}

    def idle(self) -> bool:
        """True when nothing is queued or being sent."""
        with self._cond:
            return not self._queue and not self._busy

    # -- sender thread --------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                while not self._queue and not self._stop.is_set():
                    self._cond.wait()
                if self._stop.is_set():
                    return
                item = self._queue.popleft()
                self._busy = True
            try:
                self._deliver(item)
            except Exception:  # a bug here must not end notifications for good
                log.exception("webhook delivery crashed")
            finally:
                with self._cond:
                    self._busy = False

    def _deliver(self, item: Delivery) -> None:
        alert = item.alert
        data = json.dumps(build_payload(self.config.format, item.kind, alert, self.host)).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "labwall",
            "X-Labwall-Alert": urllib.parse.quote(str(alert.get("id", ""))),
            "X-Labwall-Transition": item.kind,
            "X-Labwall-Delivery": f"{alert.get('seq', 0)}-{item.kind}-{int(item.queued_at * 1000)}",
        }
        for attempt in range(self.config.max_retries + 1):
            ok, retry, reason = self._post(data, headers)
            if ok:
                self._succeeded()
                return
            self._failed(reason, alert)
            if not retry or attempt == self.config.max_retries:
                self._count("failed")
                log.warning(
                    "webhook: gave up on %s %s after %d attempts (%s)", alert.get("id"), item.kind, attempt + 1, reason
                )
                return
            self._count("retries")
            if self._stop.wait(min(self.config.backoff_s * 2**attempt, MAX_BACKOFF_S)):
                return

    def _post(self, data: bytes, headers: dict[str, str]) -> tuple[bool, bool, str]:
        """(delivered, worth retrying, reason). Never names the URL: webhook URLs hold secrets."""
        request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        try:
            with self.opener(request, timeout=self.config.timeout_s) as response:
                response.read(65536)
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            exc.close()
            return False, exc.code >= 500 or exc.code in RETRY_STATUS, f"HTTP {exc.code}"
        except urllib.error.URLError as exc:
            return False, True, f"cannot connect: {exc.reason}"
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            return False, True, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return 200 <= status < 300, True, f"HTTP {status}"

    def _count(self, name: str) -> None:
        with self._cond:
            self.counts[name] += 1

    def _succeeded(self) -> None:
        with self._cond:
            self.counts["sent"] += 1
            recovered, self._failing = self._failing, False
            self._dropping = False
        if recovered:
            self.events.add("info", "alerts", "webhook: notifications are delivered again")

    def _failed(self, reason: str, alert: dict[str, Any]) -> None:
        with self._cond:
            first, self._failing = not self._failing, True
        if first:
            log.warning("webhook: delivery failed (%s); retrying with back-off", reason)
            self.events.add("warning", "alerts", f"webhook: delivery failed ({reason}); retrying with back-off")
