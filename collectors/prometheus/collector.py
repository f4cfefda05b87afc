"""The prometheus source: every host a Prometheus server scrapes, for the multi-host wall.

Each reading sends ONE instant query per metric for all hosts (never one per host) and, every
`range_every` readings, ONE range query for the hosts' sparklines; with the labwall flavor, every
`usage_every` readings, two instant queries for the lab-wide GPU-hours per user (lab_usage.py).
Each query has a timeout and the
whole reading a deadline, so a slow or dead Prometheus costs this thread a few seconds and never the
wall: the last good data stays in the store, marked stale since the first failure, the collector's
health says why (healthz degraded), and the next good answer clears it.
"""

from __future__ import annotations

import time

from collectors.base import MAX_BACKOFF_S, Collector, SourceUnavailable
from collectors.prometheus.config import PrometheusConfig
from collectors.prometheus.lab_usage import lab_usage_document, usage_max_age_s, usage_queries
from collectors.prometheus.mapping import assemble, assemble_runs, build_flavor, down_instances, sparklines
from collectors.prometheus.query import InstantSample, PrometheusClient, PrometheusError
from monitor.model.documents import Source
from monitor.model.store import Store

SPARK_POINTS = 60
DOWN_QUERY = "up == 0"  # only the failing targets: a small answer whatever the lab's size


class PrometheusCollector(Collector):
    name = "prometheus"

    def __init__(self, store: Store, config: PrometheusConfig) -> None:
        super().__init__(store, config.interval_s)
        assert config.url is not None, "the prometheus source needs prometheus.url"
        self.config = config
        self.client = PrometheusClient(config.url, config.timeout_s)
        self.flavor = build_flavor(config)
        self.readings = 0
        self.failures = 0
        self.usage = usage_queries(config) if config.flavor == "labwall" else None
        self.usage_failed = False  # a failed usage query is tried again at the next reading
        store.remote.configure(config.url)

    def collect(self, now: float) -> None:
        # The whole reading gets twice the per-query timeout: a Prometheus that answers every query
        # slowly fails the reading instead of holding the thread for queries x timeout.
        deadline = time.monotonic() + 2 * self.config.timeout_s
        try:
            results = self._instant_queries(deadline)
            sparks = None
            if self.readings % self.config.range_every == 0:
                end = time.time()
                start = end - self.config.lookback_s
                step = max(1.0, self.config.lookback_s / SPARK_POINTS)
                sparks = self.client.query_range(self.flavor.spark, start, end, step, self._left(deadline))
        except PrometheusError as exc:
            self.failures += 1
            since = self.store.remote.failed(str(exc), now)
            stamp = time.strftime("%H:%M:%S", time.localtime(since))
            retry = min(self.interval_s * 2 ** (self.failures - 1), max(MAX_BACKOFF_S, self.interval_s))
            raise SourceUnavailable(f"Prometheus not answering since {stamp}: {exc}", retry_s=retry) from None
        self.failures = 0
        selector = self.config.host_selector
        readings = assemble(self.flavor, results, selector)
        runs = assemble_runs(self.flavor, results, selector)
        self.store.remote.update(readings, runs, down_instances(results["up"]), now,
                                 self.config.forget_after_s, self.client.queries)
        if sparks is not None:
            self.store.remote.set_sparklines(sparklines(self.flavor, sparks, selector))
        if self.usage is not None and (self.usage_failed or self.readings % self.config.usage_every == 0):
            self._read_usage(now)
        self.readings += 1

    def _read_usage(self, now: float) -> None:
        """The lab-wide usage document; a failure keeps the last one (the views judge its age by
        its time) and is named in the health detail, without failing the host readings."""
        assert self.usage is not None
        deadline = time.monotonic() + 2 * self.config.timeout_s
        try:
            hours = self.client.query(self.usage.gpu_seconds, timeout_s=self._left(deadline))
            idle = self.client.query(self.usage.idle_seconds, timeout_s=self._left(deadline))
        except PrometheusError as exc:
            self.usage_failed = True
            self.health.detail = {"degraded": f"lab-wide usage query failed: {exc}"}
            return
        self.usage_failed = False
        self.health.detail = {}
        self.store.set_state(Source.LAB_USAGE, lab_usage_document(hours, idle, now, usage_max_age_s(self.config)),
                             time=now)

    def _instant_queries(self, deadline: float) -> dict[str, list[InstantSample]]:
        results: dict[str, list[InstantSample]] = {}
        for metric in (*self.flavor.metrics, *self.flavor.runs):
            results[f"{metric.scope}:{metric.key}"] = self.client.query(metric.promql, timeout_s=self._left(deadline))
        results["up"] = self.client.query(DOWN_QUERY, timeout_s=self._left(deadline))
        return results

    def _left(self, deadline: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise PrometheusError(f"too slow: the queries of one reading took over {2 * self.config.timeout_s:g} s")
        return min(self.config.timeout_s, left)
