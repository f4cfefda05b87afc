"""Webhook notifications against a REAL HTTP receiver on loopback: one delivery per transition,
retried after a 500, never blocking the engine while the receiver hangs, bounded queue."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from alerts_support import HOST, Lab, Receiver, make_config
from support import free_port, wait_for

from monitor.alerts.notify import WebhookNotifier, slack_payload
from monitor.config import ConfigError, parse_config

FAST = {"backoff_s": 0.01, "timeout_s": 10}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def webhook_lab(url: str, **webhook: Any) -> Lab:
    config = make_config({
        "gpu_lost": {"for_s": 0, "clear_after_s": 0},
        "webhook": {"url": url, **FAST, **webhook},
    })  # fmt: skip
    lab = Lab(config)
    assert isinstance(lab.engine.notifier, WebhookNotifier)
    return lab


def flap(lab: Lab, gpu: int = 0) -> None:
    """One raise and one clear of gpu_lost (for_s 0, clear_after_s 0)."""
    lab.fake.lose(gpu)
    lab.tick()
    lab.fake.restore(gpu)
    lab.tick()


def settle(lab: Lab) -> None:
    notifier = lab.engine.notifier
    wait_for(notifier.idle, timeout=10, what="the webhook queue to drain")


def test_one_post_per_transition_with_a_slack_payload(receiver: Receiver) -> None:
    lab = webhook_lab(receiver.url)
    lab.fake.readings[1].temperature_c = 93
    lab.tick(100)  # hot GPU 1: raised after 30 s, and stays raised
    lab.fake.readings[1].temperature_c = 50
    lab.tick(100)  # cleared after 60 s
    settle(lab)
    requests = receiver.delivered()
    assert [r["headers"]["X-Labwall-Transition"] for r in requests] == ["raised", "cleared"]
    assert {urllib.parse.unquote(r["headers"]["X-Labwall-Alert"]) for r in requests} == {"gpu_hot:gpu1"}
    raised, cleared = (r["body"] for r in requests)
    assert raised["text"] == f":warning: [WARNING] GPU 1 hot on {HOST}"
    [attachment] = raised["attachments"]
    assert attachment["text"] == "GPU 1 at 93 °C (alert at 85 °C)" and attachment["color"] == "#f0a202"
    assert {f["title"] for f in attachment["fields"]} == {"Severity", "Host", "Raised"}
    assert cleared["text"] == f":white_check_mark: [RESOLVED] GPU 1 hot on {HOST}"
    assert lab.engine.notifier.stats()["sent"] == 2
    assert len(receiver.requests) == 2  # nothing sent twice


def test_json_format(receiver: Receiver) -> None:
    lab = webhook_lab(receiver.url, format="json")
    flap(lab, 3)
    settle(lab)
    bodies = [r["body"] for r in receiver.delivered()]
    assert [b["event"] for b in bodies] == ["raised", "cleared"]
    assert bodies[0]["host"] == HOST and bodies[0]["alert"]["id"] == "gpu_lost:gpu3"
    assert bodies[1]["alert"]["state"] == "cleared" and bodies[1]["alert"]["cleared_at"] is not None


def test_retried_with_back_off_after_a_500(receiver: Receiver) -> None:
    receiver.statuses = [500, 503]
    lab = webhook_lab(receiver.url)
    lab.fake.lose(2)
    lab.tick()
    settle(lab)
    assert [r["status"] for r in receiver.requests] == [500, 503, 200]
    deliveries = {r["headers"]["X-Labwall-Delivery"] for r in receiver.requests}
    assert len(deliveries) == 1  # the same notification each time: a receiver can de-duplicate
    assert len(receiver.delivered()) == 1
    stats = lab.engine.notifier.stats()
    assert (stats["sent"], stats["retries"], stats["failed"]) == (1, 2, 0)
    webhook_events = [(level, text) for level, text in lab.alert_events() if text.startswith("webhook")]
    assert webhook_events == [  # the outage is logged once, not once per attempt
        ("warning", "webhook: delivery failed (HTTP 500); retrying with back-off"),
        ("info", "webhook: notifications are delivered again"),
    ]


def test_a_client_error_is_not_retried(receiver: Receiver) -> None:
    receiver.statuses = [400]
    lab = webhook_lab(receiver.url)
    flap(lab)
    settle(lab)
    assert [r["status"] for r in receiver.requests] == [400, 200]
    stats = lab.engine.notifier.stats()
    assert (stats["sent"], stats["failed"], stats["retries"]) == (1, 1, 0)


def test_an_unreachable_receiver_gives_up_after_max_retries_and_logs_once() -> None:
    lab = webhook_lab(f"http://127.0.0.1:{free_port()}/hook", max_retries=2)
    flap(lab)
    flap(lab)
    settle(lab)
    stats = lab.engine.notifier.stats()
    assert (stats["sent"], stats["failed"], stats["retries"]) == (0, 4, 8)
    failures = [text for _, text in lab.alert_events() if text.startswith("webhook")]
    assert len(failures) == 1 and failures[0].startswith("webhook: delivery failed (cannot connect")
    assert "127.0.0.1" not in failures[0]  # the URL (a secret) never reaches the event log


def test_a_hanging_receiver_never_blocks_the_engine(receiver: Receiver) -> None:
    receiver.hang = True
    lab = webhook_lab(receiver.url, queue_size=5)
    lab.fake.lose(0)
    lab.tick()
    receiver.entered.wait(10)
    assert receiver.entered.is_set()  # the sender is now stuck inside the receiver
    for _ in range(50):  # 100 more transitions while the receiver does not answer
        lab.fake.restore(0)
        lab.tick()
        lab.fake.lose(0)
        lab.tick()
    doc = lab.doc()  # every tick completed and published while the POST hangs
    assert doc["raised_total"] == 51 and doc["cleared_total"] == 50 and doc["time"] == lab.t
    assert len(receiver.requests) == 1 and not receiver.release.is_set()
    stats = lab.engine.notifier.stats()
    assert stats["dropped"] == 101 - 1 - 5 and stats["queued"] == 6  # 5 waiting + 1 in flight
    assert sum("queue full" in text for _, text in lab.alert_events()) == 1
    receiver.release.set()
    settle(lab)
    assert len(receiver.delivered()) == 6  # the one in flight, then the 5 newest
    assert receiver.delivered()[-1]["headers"]["X-Labwall-Transition"] == "raised"


def test_stop_does_not_wait_for_a_hanging_receiver(receiver: Receiver) -> None:
    receiver.hang = True
    lab = webhook_lab(receiver.url)
    flap(lab)
    receiver.entered.wait(10)
    lab.engine.close()  # what CollectorThread does on shutdown: returns at once
    receiver.release.set()
    assert lab.engine.notifier.join(5)


def test_slack_text_from_runs_and_users_pings_nobody() -> None:
    alert = {
        "id": "run_crashed:x",
        "rule": "run_crashed",
        "severity": "critical",
        "title": "run <!channel> crashed",
        "message": "run <!channel> crashed: @here & @all",
        "raised_at": 1.0e9,
    }
    payload = slack_payload("raised", alert, "gpu-1")
    assert payload["text"] == ":rotating_light: [CRITICAL] run &lt;!channel&gt; crashed on gpu-1"
    text = payload["attachments"][0]["text"]
    assert "<!" not in text and "@here" not in text and "@all" not in text and "&amp;" in text


def test_webhook_config() -> None:
    assert parse_config({}).alerts.webhook.url is None  # off by default
    with pytest.raises(ConfigError) as info:
        parse_config({"alerts": {"webhook": {"url": "ftp://example.org/x", "max_retries": -1}}})
    text = "\n".join(info.value.problems)
    assert "alerts.webhook.url" in text and "http:// or https://" in text and "alerts.webhook.max_retries" in text
