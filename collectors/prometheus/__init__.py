"""The other hosts of the lab, through a Prometheus server; declared as `prometheus` (on with a url)."""

from __future__ import annotations

from collectors.prometheus.collector import PrometheusCollector
from collectors.prometheus.config import PrometheusConfig
from collectors.registry import CollectorSpec
from monitor.model.settings import CollectorContext


def build_prometheus_collector(section: PrometheusConfig, context: CollectorContext) -> PrometheusCollector | None:
    return PrometheusCollector(context.store, section) if section.url else None


SPEC = CollectorSpec("prometheus", PrometheusConfig, build_prometheus_collector, order=50)
