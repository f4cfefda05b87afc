"""Check every socket message a browser sends before NiceGUI sees it.

The wall registers no event handlers, so a browser has nothing to send but NiceGUI's own
bookkeeping (handshake, ack, javascript_response, log). NiceGUI reads those messages' keys
unchecked: a forged event for a listener that does not exist, or a message missing a key or with
a key of the wrong type, costs an ERROR traceback each, and anyone on the lab network could fill
the journal that way. This guard drops such messages, counts them and logs a one-line warning at
most once a minute. Well-formed messages pass unchanged, except "log": the browser is not
trusted, so its text is logged as one quoted, shortened line, never above warning.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from typing import Any

from nicegui import core
from nicegui.client import Client
from nicegui.json import loads as nicegui_loads  # the decoder NiceGUI's handler uses

log = logging.getLogger(__name__)
WARN_EVERY_S = 60.0
LOG_TEXT_CHARS = 300
LOG_LEVELS = ("debug", "info", "warning", "error")

# The keys NiceGUI's handler of each message reads without checking, and their types.
SHAPES: dict[str, dict[str, type | tuple[type, ...]]] = {
    "event": {"client_id": str, "id": int, "listener_id": str},
    "javascript_response": {"client_id": str, "request_id": str},
    "ack": {"client_id": str, "next_message_id": int},
    "log": {"client_id": str, "level": str, "message": str},
    "handshake": {"client_id": str, "tab_id": str, "document_id": str},
}
# Keys read only when present (None when absent).
OPTIONAL: dict[str, dict[str, tuple[type, ...]]] = {
    "handshake": {"old_tab_id": (str, type(None)), "next_message_id": (int, type(None))},
}


def well_formed(kind: str, msg: Any) -> bool:
    if not isinstance(msg, dict):
        return False
    shape = {**SHAPES[kind], **OPTIONAL.get(kind, {})}
    return all(isinstance(msg.get(key), types) and not isinstance(msg.get(key), bool) for key, types in shape.items())


def json_args(args: Any) -> bool:
    """An event's arguments as NiceGUI decodes them: absent, or a list of JSON texts and nulls."""
    if args is None:
        return True
    if not isinstance(args, list) or not all(a is None or isinstance(a, str) for a in args):
        return False
    try:
        for arg in args:
            if arg is not None:
                nicegui_loads(arg)
    except ValueError:
        return False
    return True


class Throttled:
    """A warning logged at most once per WARN_EVERY_S, saying how many times it happened since."""

    def __init__(self) -> None:
        self.count = 0
        self._reported = 0
        self._last = -WARN_EVERY_S

    def note(self, emit: Callable[[int], None]) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self._last >= WARN_EVERY_S:
            emit(self.count - self._reported)
            self._reported, self._last = self.count, now


class EventGuard:
    def __init__(self) -> None:
        self.dropped_messages = Throttled()
        self.browser_logs = Throttled()

    @property
    def dropped(self) -> int:
        return self.dropped_messages.count

    def allows(self, kind: str, msg: Any) -> bool:
        if not well_formed(kind, msg):
            return False
        if kind != "event":
            return True
        client = Client.instances.get(msg["client_id"])
        element = client.elements.get(msg["id"]) if client is not None else None
        return element is not None and msg["listener_id"] in element._event_listeners and json_args(msg.get("args"))

    def drop(self) -> None:
        self.dropped_messages.note(lambda n: log.warning(
            "ignored %d client message(s): events for listeners that do not exist or malformed messages "
            "(the wall takes no input)", n))

    def browser_log(self, msg: dict[str, Any]) -> None:
        """A page's own log line (e.g. a JavaScript error), as one quoted line."""
        level = msg["level"] if msg["level"] in LOG_LEVELS else "info"
        text = msg["message"][:LOG_TEXT_CHARS]
        self.browser_logs.note(lambda n: log.warning("browser %s (%d since the last such line): %r",
                                                     level, n, text))


def install_event_guard() -> EventGuard | None:
    """Wrap NiceGUI's socket.io handlers once per process; returns the guard."""
    handlers = core.sio.handlers.get("/", {})
    original_event = handlers.get("event")
    if original_event is None:
        return None
    existing = getattr(original_event, "labwall_guard", None)
    if existing is not None:
        return existing
    guard = EventGuard()
    for kind in SHAPES:
        original = handlers.get(kind)
        if original is not None:
            core.sio.on(kind, _guarded(guard, kind, original))
    return guard


def _guarded(guard: EventGuard, kind: str, original: Callable[..., Any]) -> Callable[..., Any]:
    def check(msg: Any) -> bool:
        if guard.allows(kind, msg):
            return True
        guard.drop()
        return False

    if inspect.iscoroutinefunction(original):  # handshake: its answer (False) refuses the socket
        async def guarded_async(sid: str, msg: Any, *rest: Any) -> Any:
            return await original(sid, msg, *rest) if check(msg) else False

        guarded: Callable[..., Any] = guarded_async
    elif kind == "log":
        def guarded(sid: str, msg: Any, *rest: Any) -> Any:
            if check(msg):
                guard.browser_log(msg)
            return None
    else:
        def guarded(sid: str, msg: Any, *rest: Any) -> Any:
            return original(sid, msg, *rest) if check(msg) else None

    guarded.labwall_guard = guard  # type: ignore[attr-defined]
    return guarded
