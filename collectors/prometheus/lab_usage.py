"""Lab-wide GPU-hours per user through Prometheus (labwall flavor only: DCGM series carry no users).

Every labwall serves the per-user counters `labwall_gpu_user_seconds_total{host,user}` and
`labwall_gpu_user_idle_seconds_total{host,user}`; two instant queries, `sum by (user)
(increase(…[7d]))` over the selected hosts, add them up for the whole lab. The answer becomes the
"lab_usage" state document (monitor/model/documents.py), read by the wall's usage strip.
"""

from __future__ import annotations

from dataclasses import dataclass

from collectors.prometheus.config import PrometheusConfig
from collectors.prometheus.mapping import promql_string
from collectors.prometheus.query import InstantSample
from monitor.model import metric_names as m
from monitor.model.documents import LabUsageDocument, LabUserUsage

WINDOW_S = 7 * 86400.0  # the strip's "this week"
WINDOW = "7d"
USER_LABEL = "user"
# The document stays "fresh" this many usage intervals (so one or two failed queries keep it shown).
FRESH_INTERVALS = 3


@dataclass(frozen=True, slots=True)
class UsageQueries:
    gpu_seconds: str
    idle_seconds: str


def usage_queries(config: PrometheusConfig) -> UsageQueries:
    """The two instant queries, over the hosts that `host_selector` matches (anchored, like the wall's)."""
    selector = "{" + m.HOST_LABEL + "=~" + promql_string(config.host_selector) + "}"

    def summed(counter: m.MetricName) -> str:
        return f"sum by ({USER_LABEL}) (increase({counter.name}{selector}[{WINDOW}]))"

    return UsageQueries(summed(m.GPU_USER_SECONDS), summed(m.GPU_USER_IDLE_SECONDS))


def usage_max_age_s(config: PrometheusConfig) -> float:
    """How long one answer stays good enough to show: a few usage intervals, at least a minute."""
    return max(60.0, FRESH_INTERVALS * config.usage_every * config.interval_s + config.timeout_s)


def lab_usage_document(gpu_seconds: list[InstantSample], idle_seconds: list[InstantSample], now: float,
                       max_age_s: float) -> LabUsageDocument:
    """The per-user sums as GPU-hours, largest first; a user with no idle series has 0 idle hours,
    and idle hours never exceed the user's hours (two queries see slightly different samples)."""
    hours: dict[str, float] = {}
    for sample in gpu_seconds:
        user = sample.labels.get(USER_LABEL, "")
        hours[user] = hours.get(user, 0.0) + max(0.0, sample.value) / 3600.0
    idle: dict[str, float] = {}
    for sample in idle_seconds:
        user = sample.labels.get(USER_LABEL, "")
        idle[user] = idle.get(user, 0.0) + max(0.0, sample.value) / 3600.0
    users: list[LabUserUsage] = [
        {"user": user, "gpu_hours": h, "idle_gpu_hours": min(h, idle.get(user, 0.0))}
        for user, h in hours.items()
    ]
    users.sort(key=lambda u: (-u["gpu_hours"], u["user"]))
    return {"time": now, "window_s": WINDOW_S, "max_age_s": max_age_s, "users": users}
