"""View restriction (server.allow, server.token, server.metrics_allow, server.healthz_open): the rules
as a pure function, then real requests to a real server from different loopback source addresses."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from support import LabwallServer

from monitor.config import ConfigError, parse_config
from monitor.web.access import COOKIE, AccessRules

TOKEN = "kiosk-token-0123456789abcdef"
NET = ipaddress.ip_network


def rules(allow: list[str] = (), token: str | None = None, metrics_allow: list[str] | None = None,
          healthz_open: bool = True) -> AccessRules:
    nets = None if metrics_allow is None else [NET(n) for n in metrics_allow]
    return AccessRules([NET(n) for n in allow], token, nets, healthz_open)


def test_off_by_default_lets_everything_through() -> None:
    assert not rules().active
    assert rules().decide("/", "203.0.113.9", None, None, None) is None


def test_network_rule_names_the_address_and_the_key() -> None:
    r = rules(allow=["10.1.0.0/16", "::1/128"])
    assert r.decide("/", "10.1.2.3", None, None, None) is None
    assert r.decide("/", "::ffff:10.1.2.3", None, None, None) is None, "IPv4-mapped IPv6 peer"
    assert r.decide("/", "::1", None, None, None) is None
    reason = r.decide("/api/snapshot", "10.2.0.1", None, None, None)
    assert reason is not None and "10.2.0.1" in reason and "server.allow" in reason
    assert r.decide("/", None, None, None, None) is not None, "no peer address: refused"
    assert r.decide("/healthz", "10.2.0.1", None, None, None) is None, "load balancers"
    assert rules(allow=["10.1.0.0/16"], healthz_open=False).decide("/healthz", "10.2.0.1", None, None, None)


def test_token_from_cookie_query_or_bearer() -> None:
    r = rules(token=TOKEN)
    assert "token is required" in (r.decide("/", "127.0.0.1", None, None, None) or "")
    assert r.decide("/", "127.0.0.1", "wrong-token-0123456789", None, None) is not None
    assert r.decide("/", "127.0.0.1", TOKEN, None, None) is None
    assert r.decide("/", "127.0.0.1", None, TOKEN, None) is None
    assert r.decide("/metrics", "127.0.0.1", None, None, TOKEN) is None


def test_metrics_have_their_own_networks() -> None:
    r = rules(allow=["10.1.0.0/16"], token=TOKEN, metrics_allow=["192.0.2.0/24"])
    assert r.decide("/metrics", "192.0.2.7", None, None, None) is None, "Prometheus: no token, other network"
    assert "metrics_allow" in (r.decide("/metrics", "10.1.0.5", TOKEN, None, None) or "")


@pytest.mark.parametrize(("server", "problem"), [
    ({"allow": ["10.0.0.300/8"]}, "server.allow.0"),
    ({"allow": "10.0.0.0/8"}, "server.allow"),
    ({"token": "short"}, "server.token"),
    ({"token": "has space in the middle!!"}, "server.token"),
    ({"metrics_allow": ["not-a-network"]}, "server.metrics_allow.0"),
])
def test_bad_rules_stop_start_up_naming_the_key(server: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"server": server})
    assert caught.value.problems[0].startswith(problem + ":"), caught.value.problems


def from_address(source: str) -> httpx.Client:
    """A client whose connections leave from `source` (any 127.0.0.0/8 address is this machine)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=5, follow_redirects=False)


def test_allowed_network_from_real_loopback_addresses(labwall_server: Callable[..., LabwallServer]) -> None:
    server = labwall_server({"server": {"allow": ["127.0.0.1/32"], "metrics_allow": ["127.0.0.3/32"]}})
    with from_address("127.0.0.1") as inside, from_address("127.0.0.2") as outside, \
            from_address("127.0.0.3") as scraper:
        for path in ("/", "/api/snapshot", "/api/runs"):
            assert inside.get(server.url + path).status_code == 200, path
            refused = outside.get(server.url + path)
            assert refused.status_code == 403, path
            assert "127.0.0.2" in refused.text and "server.allow" in refused.text
        assert outside.get(server.url + "/healthz").status_code == 200
        assert scraper.get(server.url + "/metrics").status_code == 200
        assert inside.get(server.url + "/metrics").status_code == 403, "metrics_allow replaces allow for /metrics"
        polling = "/_nicegui_ws/socket.io/?EIO=4&transport=polling"
        assert outside.get(server.url + polling).status_code == 403, "the socket is guarded like the page"


def test_token_sets_a_cookie_and_cleans_the_url(labwall_server: Callable[..., LabwallServer]) -> None:
    server = labwall_server({"server": {"token": TOKEN}})
    with from_address("127.0.0.1") as client:
        assert client.get(server.url + "/").status_code == 403
        assert client.get(server.url + "/?token=wrong-token-0123456789").status_code == 403
        first = client.get(server.url + f"/api/events?token={TOKEN}&after=0")
        assert first.status_code == 303
        assert first.headers["location"] == "/api/events?after=0"
        cookie = first.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}={TOKEN};") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        client.cookies.set(COOKIE, TOKEN)
        with_cookie = client.get(server.url + "/api/events?after=0")
        assert with_cookie.status_code == 200 and "events" in with_cookie.json()
        client.cookies.clear()
        assert client.get(server.url + "/metrics").status_code == 403
        scrape = client.get(server.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert scrape.status_code == 200 and "labwall_info" in scrape.text
        assert client.get(server.url + "/healthz").status_code == 200
