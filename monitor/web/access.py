"""Who may look: optional network and token rules in front of every route (off by default).

The wall shows user names and command lines, so a lab may want it seen only from its own networks
(`server.allow`, CIDR list) or only by browsers that once opened a kiosk URL with `?token=…`
(`server.token`; the token is then kept in an HttpOnly cookie and the URL is cleaned). `/metrics`
and `/healthz` have their own rules so a Prometheus and a load balancer need no browser cookie:
`server.metrics_allow` (networks that may scrape without a token; unset: the page rules, where a
scraper may send the token as `Authorization: Bearer …`) and `server.healthz_open`.
Pure ASGI middleware: it guards socket.io (polling and websocket) exactly like the pages.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

from monitor.web.http_guard import ASGIApp, Receive, Scope, Send

COOKIE = "labwall_token"
COOKIE_MAX_AGE_S = 400 * 86400  # browsers cap cookie lifetimes at 400 days
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AccessRules:
    """The rules of one server; `decide()` is a pure function of the request, easy to test."""

    def __init__(self, allow: Sequence[Network], token: str | None, metrics_allow: Sequence[Network] | None,
                 healthz_open: bool) -> None:
        self.allow = list(allow)
        self.token = token
        self.metrics_allow = None if metrics_allow is None else list(metrics_allow)
        self.healthz_open = healthz_open

    @property
    def active(self) -> bool:
        return bool(self.allow or self.token or self.metrics_allow is not None)

    def decide(self, path: str, client: str | None, cookie_token: str | None, query_token: str | None,
               bearer: str | None) -> str | None:
        """None when the request may pass, else the reason it may not (shown to the viewer)."""
        if path == "/healthz" and self.healthz_open:
            return None
        if path == "/metrics" and self.metrics_allow is not None:
            if _in(client, self.metrics_allow):
                return None
            return f"address {client or 'unknown'} may not scrape /metrics (server.metrics_allow)"
        if self.allow and not _in(client, self.allow):
            return f"address {client or 'unknown'} is not in the networks allowed to see this wall (server.allow)"
        if self.token and not any(_same(self.token, given) for given in (cookie_token, query_token, bearer)):
            return "a token is required: open the kiosk URL with ?token=… once (server.token)"
        return None


def _in(client: str | None, networks: Sequence[Network]) -> bool:
    if not client:
        return False
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
    return any(address in network for network in networks)


def _same(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _cookie_token(scope: Scope) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(raw)
    except Exception:  # a malformed Cookie header from a client: treated as no cookie
        return None
    morsel = cookie.get(COOKIE)
    return morsel.value if morsel else None


def _bearer(scope: Scope) -> str | None:
    raw = _header(scope, b"authorization") or ""
    return raw[7:].strip() if raw[:7].lower() == "bearer " else None


class AccessGuard:
    """Answers 403 (or closes the websocket) before any route runs; strips `token` from the query."""

    def __init__(self, app: ASGIApp, rules: AccessRules) -> None:
        self.app = app
        self.rules = rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.rules.active:
            return await self.app(scope, receive, send)
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        query_token = next((value for name, value in query if name == "token"), None)
        client = (scope.get("client") or (None,))[0]
        reason = self.rules.decide(scope.get("path", ""), client, _cookie_token(scope), query_token, _bearer(scope))
        if reason is not None:
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008})
            return await _forbidden(send, reason)
        if query_token is not None and scope["type"] == "http":
            rest = [(name, value) for name, value in query if name != "token"]
            if scope.get("method") == "GET" and self.rules.token and _same(self.rules.token, query_token):
                return await _remember(send, scope.get("path", "/"), urlencode(rest), query_token)
            scope = {**scope, "query_string": urlencode(rest).encode("latin-1")}
        return await self.app(scope, receive, send)


async def _forbidden(send: Send, reason: str) -> None:
    body = f"labwall: access denied — {reason}\n".encode()
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})


async def _remember(send: Send, path: str, query: str, token: str) -> None:
    """Set the cookie and send the browser to the same URL without the token (out of history and logs)."""
    location = path + (f"?{query}" if query else "")
    cookie = f"{COOKIE}={token}; Path=/; Max-Age={COOKIE_MAX_AGE_S}; HttpOnly; SameSite=Lax"
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode("latin-1")), (b"set-cookie", cookie.encode("latin-1")),
                            (b"content-length", b"0"), (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": b""})


def install_access_rules(app: Any, rules: AccessRules) -> None:
    """Outermost middleware (added last): a refused request costs no route matching or page."""
    app.add_middleware(AccessGuard, rules=rules)
