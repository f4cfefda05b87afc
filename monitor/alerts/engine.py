"""The alert engine: once a second, turns the rules' conditions into alerts with a lifecycle.

It is a collector named "alerts" run by a CollectorThread, so it is supervised like every source,
but its only source is the store: it reads the GPU and system state documents, collector health
and the run registry, and writes back the "alerts" state document plus events (source "alerts":
warning/error when raised, info when cleared). Viewers change nothing; there are no acks.

Lifecycle of one alert (id = "rule:subject", stable, so a re-raise reuses it):
    pending  the condition is true; waiting for the rule's `for_s` (it stays pending while the
             value is within the hysteresis band, and is dropped when it leaves it)
    active   raised: `for_s` elapsed with the condition true; stays while within the band
    cleared  out of the band for `clear_after_s`; kept in a bounded list of recent alerts
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from collectors.base import Collector
from monitor.alerts.rules import AlertRules, Observation, RuleResult, duration_text
from monitor.config import AlertRule, Config
from monitor.model.documents import Source
from monitor.model.store import Store

log = logging.getLogger(__name__)

AlertState = Literal["pending", "active", "cleared"]
SEVERITY_RANK = {"critical": 2, "warning": 1}


@dataclass(slots=True)
class Alert:
    id: str
    rule: str
    severity: str
    subject: str
    title: str
    message: str
    details: dict[str, Any]
    since: float  # the condition first held (start of pending)
    state: AlertState = "pending"
    raised_at: float | None = None
    cleared_at: float | None = None
    false_since: float | None = None  # out of the hysteresis band since (while active)
    seq: int = 0  # the n-th alert raised by this engine: tells two raises of one id apart

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seq": self.seq,
            "rule": self.rule,
            "severity": self.severity,
            "state": self.state,
            "subject": self.subject,
            "title": self.title,
            "message": self.message,
            "details": dict(self.details),
            "since": self.since,
            "raised_at": self.raised_at,
            "cleared_at": self.cleared_at,
        }


def sort_active(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Largest first: critical before warning, then the oldest (longest raised) first."""
    return sorted(alerts, key=lambda a: (-SEVERITY_RANK.get(a["severity"], 0), a["raised_at"] or a["since"], a["id"]))


class AlertEngine(Collector):
    name = "alerts"

    def __init__(self, store: Store, config: Config, notifier: Any | None = None) -> None:
        super().__init__(store, config.alerts.interval_s)
        self.config = config
        self.rules = AlertRules(config, store, exclude_collectors=(self.name,))
        if notifier is None and config.alerts.webhook.url:
            from monitor.alerts.notify import WebhookNotifier  # only when configured

            notifier = WebhookNotifier(config.alerts.webhook, store.events, store.host)
        self.notifier = notifier
        self.alerts: dict[str, Alert] = {}  # pending and active
        self.recent: deque[Alert] = deque(maxlen=config.alerts.recent_max)
        self.raised_total = 0
        self.cleared_total = 0
        self._seq = 0
        self._restore_recent(store.restored_alerts)

    # -- Collector hooks ----------------------------------------------------------------------------
    def setup(self) -> None:
        if self.notifier is not None:
            self.notifier.start()

    def close(self) -> None:
        if self.notifier is not None:
            self.notifier.stop()

    def collect(self, now: float) -> None:
        results = self.rules.evaluate(now)
        for rule_name, result in results.items():
            self._apply(rule_name, getattr(self.config.alerts, rule_name), result, now)
        self.publish(now)

    # -- lifecycle ----------------------------------------------------------------------------------
    def _for_s(self, rule: AlertRule) -> float:
        # gpu_idle's for_s defaults to thresholds.gpu_idle_after_s
        return rule.for_s if rule.for_s is not None else self.config.thresholds.gpu_idle_after_s

    def _apply(self, rule_name: str, rule: AlertRule, result: RuleResult, now: float) -> None:
        prefix = rule_name + ":"
        for key, obs in result.observations.items():
            self._step(rule_name, rule, prefix + key, obs, now)
        if not result.known:
            return  # stale source: nothing raises, nothing clears
        for alert_id in [a for a in self.alerts if a.startswith(prefix)]:
            key = alert_id[len(prefix) :]
            if key not in result.observations and key not in result.unknown:
                self._step(rule_name, rule, alert_id, None, now)  # the subject is gone: false

    def _step(self, rule_name: str, rule: AlertRule, alert_id: str, obs: Observation | None, now: float) -> None:
        alert = self.alerts.get(alert_id)
        raising, holding = (obs.raising, obs.holding) if obs is not None else (False, False)
        if alert is None:
            if not raising or obs is None:
                return
            alert = self.alerts[alert_id] = Alert(
                alert_id, rule_name, rule.severity, obs.subject, obs.title, obs.message, obs.details, since=now
            )
        if obs is not None and holding:
            alert.subject, alert.title, alert.message, alert.details = obs.subject, obs.title, obs.message, obs.details
        if now < alert.since:  # the clock stepped back: start the wait again
            alert.since = now
        if alert.state == "pending":
            if not holding:
                del self.alerts[alert_id]  # left the band before its time: never raised
            elif raising and now - alert.since >= self._for_s(rule):
                self._raise(alert, now)
            return
        if holding:
            alert.false_since = None
            return
        if alert.false_since is None or now < alert.false_since:
            alert.false_since = now
        if now - alert.false_since >= rule.clear_after_s:
            self._clear(alert, now)

    def _raise(self, alert: Alert, now: float) -> None:
        self._seq += 1
        alert.seq, alert.state, alert.raised_at = self._seq, "active", now
        level = "error" if alert.severity == "critical" else "warning"
        self.store.events.add(level, "alerts", f"raised — {alert.message}", time=now)
        self._transition("raised", alert)

    def _clear(self, alert: Alert, now: float) -> None:
        alert.state, alert.cleared_at = "cleared", now
        del self.alerts[alert.id]
        self.recent.append(alert)
        active_for = duration_text(now - (alert.raised_at or now))
        self.store.events.add("info", "alerts", f"cleared — {alert.title} (active for {active_for})", time=now)
        self._transition("cleared", alert)

    def _transition(self, kind: Literal["raised", "cleared"], alert: Alert) -> None:
        body = alert.as_dict()
        if kind == "raised":
            self.raised_total += 1
        else:
            self.cleared_total += 1
        if self.notifier is not None:
            self.notifier.notify(kind, body)  # never blocks: a bounded queue drained by its own thread
        self.store.record_alert(kind, body, (alert.cleared_at if kind == "cleared" else alert.raised_at) or 0.0)

    def _restore_recent(self, cleared: list[dict[str, Any]]) -> None:
        """Cleared alerts kept by durable storage (oldest first) become "recent" again after a restart."""
        for body in cleared:
            try:
                self.recent.append(Alert(**{k: v for k, v in body.items() if k in Alert.__slots__}))
            except TypeError:
                continue  # a row written by another version: that alert only is lost
        self._seq = max((a.seq for a in self.recent), default=0)

    # -- the state document -------------------------------------------------------------------------
    def document(self, now: float) -> dict[str, Any]:
        current = [a.as_dict() for a in self.alerts.values()]
        return {
            "time": now,
            "host": self.store.host,
            "rules": sorted(self.rules.rules),
            "active": sort_active([a for a in current if a["state"] == "active"]),
            "pending": sorted((a for a in current if a["state"] == "pending"), key=lambda a: a["since"]),
            "recent": [a.as_dict() for a in reversed(self.recent)],  # most recently cleared first
            "raised_total": self.raised_total,
            "cleared_total": self.cleared_total,
            "webhook": self.notifier.stats() if self.notifier is not None else None,
        }

    def publish(self, now: float) -> None:
        self.store.set_state(Source.ALERTS, self.document(now), now)


def build_alert_engine(config: Config, store: Store) -> AlertEngine | None:
    """The alert engine the configuration asks for, or None when alerts are disabled."""
    return AlertEngine(store, config) if config.alerts.enabled else None
