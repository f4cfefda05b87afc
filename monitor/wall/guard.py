"""Drop client events that no element listens for, before NiceGUI sees them.

The wall registers no event handlers, so a browser has nothing to send. NiceGUI would answer a
forged event for a listener that does not exist with an ERROR traceback per message; anyone on
the lab network could fill the journal that way. This guard drops such messages, counts them and
logs a one-line warning at most once a minute. Events for listeners that exist pass unchanged.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from nicegui import core
from nicegui.client import Client

log = logging.getLogger(__name__)
WARN_EVERY_S = 60.0


class EventGuard:
    def __init__(self) -> None:
        self.dropped = 0
        self._reported = 0
        self._last_warning = 0.0

    def allows(self, msg: Any) -> bool:
        if not isinstance(msg, dict):
            return False
        client = Client.instances.get(msg.get("client_id"))  # type: ignore[arg-type]
        element = client.elements.get(msg.get("id")) if client is not None else None  # type: ignore[arg-type]
        return element is not None and msg.get("listener_id") in element._event_listeners

    def drop(self) -> None:
        self.dropped += 1
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY_S:
            log.warning("ignored %d client event(s) for listeners that do not exist (the wall takes no input)",
                        self.dropped - self._reported)
            self._reported, self._last_warning = self.dropped, now


def install_event_guard() -> EventGuard | None:
    """Wrap NiceGUI's socket.io "event" handler once per process; returns the guard."""
    handlers = core.sio.handlers.get("/", {})
    original = handlers.get("event")
    if original is None:
        return None
    existing = getattr(original, "labwall_guard", None)
    if existing is not None:
        return existing
    guard = EventGuard()

    def guarded_event(sid: str, msg: Any) -> Any:
        if not guard.allows(msg):
            guard.drop()
            return None
        return original(sid, msg)

    guarded_event.labwall_guard = guard  # type: ignore[attr-defined]
    core.sio.on("event", guarded_event)
    return guard
