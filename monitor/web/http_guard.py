"""In front of every route: bad requests get a short, specific 4xx before any page or view runs.

- request headers over MAX_HEADER_BYTES in all, or more than MAX_HEADERS of them: 431;
- a path no route knows: a small JSON 404 (NiceGUI would build a whole HTML page, a client
  object and a log warning for each one, which anyone on the lab network could repeat);
- a query parameter an API route does not take (`/api/events?afer=5`), or one that does not parse
  or is out of range (`after=-1`, `after=abc`): 400 naming the parameter, the value and the rule.
Nothing an answer says comes from a file; the value a client sent is echoed shortened, as JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.routing import Match

MAX_HEADER_BYTES = 32 * 1024  # as nginx's default large_client_header_buffers (4 × 8 KB)
MAX_HEADERS = 100  # as Apache's LimitRequestFields
ECHO_CHARS = 40
MAX_CURSOR = 2**63 - 1  # cursors are store sequence numbers (int64)
# Routes whose query parameters are checked: the page may carry a kiosk's query string, and
# Prometheus scrape configs may add `params` that an exporter is expected to ignore.
API_PATHS = ("/api/", "/healthz")
# A route whose openapi_extra sets this also takes any label name as a query parameter (/api/history).
LABEL_PARAMS = "x-labwall-label-params"
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]{0,63}")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def echo(value: Any) -> str:
    text = str(value)
    return repr(text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS] + "…")


def header_problem(headers: list[tuple[bytes, bytes]]) -> str | None:
    if len(headers) > MAX_HEADERS:
        return f"{len(headers)} request headers; at most {MAX_HEADERS} are accepted"
    size = sum(len(name) + len(value) for name, value in headers)
    if size > MAX_HEADER_BYTES:
        return f"request headers of {size} bytes; at most {MAX_HEADER_BYTES} are accepted"
    return None


def query_problem(route: APIRoute, query: list[tuple[str, str]]) -> str | None:
    known = {param.alias for param in route.dependant.query_params}
    unknown = sorted({name for name, _ in query} - known)
    if not unknown:
        return None
    if (route.openapi_extra or {}).get(LABEL_PARAMS):
        bad = [name for name in unknown if not LABEL_NAME.fullmatch(name)]
        if not bad:
            return None
        return (f"query parameter {echo(bad[0])} is not a label name (letters, digits, _; at most 64); "
                f"{route.path} takes {', '.join(sorted(known))} and LABEL=VALUE pairs")
    takes = ", ".join(sorted(known)) or "no query parameters"
    return f"unknown query parameter {echo(unknown[0])}; {route.path} takes {takes}"


def validation_problem(exc: RequestValidationError) -> str:
    """The first problem of FastAPI's validation error, in one line."""
    first = exc.errors()[0] if exc.errors() else {}
    where = first.get("loc") or ("request",)
    name = where[-1] if len(where) > 1 else where[0]
    kind = "query parameter" if where[0] == "query" else str(where[0])
    return f"{kind} {echo(name)}: {first.get('msg', 'invalid')} (got {echo(first.get('input'))})"


async def send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})


class RequestGuard:
    """Pure ASGI middleware (no request body is read, streaming responses pass untouched)."""

    def __init__(self, app: ASGIApp, routes: Callable[[], list[Any]]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        problem = header_problem(scope.get("headers", []))
        if problem is not None:
            if scope["type"] == "websocket":  # closing before accept answers the upgrade with 403
                return await send({"type": "websocket.close", "code": 1009})
            return await send_json(send, 431, {"error": "request headers too large", "detail": problem})
        if scope["type"] == "http":
            route, match = self._route(scope)
            if match is Match.NONE:
                return await send_json(send, 404, {"error": "not found", "detail": "no such page or API endpoint"})
            if isinstance(route, APIRoute) and match is Match.FULL and route.path.startswith(API_PATHS):
                problem = query_problem(route, _query(scope))
                if problem is not None:
                    return await send_json(send, 400, {"error": "bad request", "detail": problem})
        return await self.app(scope, receive, send)

    def _route(self, scope: Scope) -> tuple[Any, Match]:
        partial = None
        for route in self.routes():
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route, match
            if match is Match.PARTIAL and partial is None:
                partial = route  # the path exists for another method: the app answers 405
        return partial, Match.NONE if partial is None else Match.PARTIAL


def _query(scope: Scope) -> list[tuple[str, str]]:
    return parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)


def install_request_guard(app: FastAPI) -> None:
    """Add the guard and answer validation errors with one line instead of FastAPI's 422 document."""

    async def bad_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"error": "bad request", "detail": validation_problem(exc)}, status_code=400)

    app.add_exception_handler(RequestValidationError, bad_request)
    app.add_middleware(RequestGuard, routes=lambda: app.routes)
