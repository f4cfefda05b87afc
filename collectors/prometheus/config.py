"""The `prometheus:` config section (config.yaml documents every key)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from monitor.model.settings import PositiveSeconds, Section, valid_regex


class PrometheusConfig(Section):
    """The multi-host wall: every host a Prometheus server scrapes (collectors/prometheus/collector.py)."""

    url: str | None = None  # None: off (the wall shows this host only)
    # Regex on the host name (Prometheus' RE2 syntax, anchored): which hosts the wall shows.
    host_selector: str = Field(".+", min_length=1)
    interval_s: PositiveSeconds = 2.0
    # Each query waits at most this long; a slow or dead Prometheus never freezes the wall.
    timeout_s: float = Field(2.0, gt=0, le=60, allow_inf_nan=False)
    lookback_s: float = Field(600.0, ge=10, le=86400, allow_inf_nan=False)  # span of the per-host sparklines
    range_every: int = Field(5, ge=1, le=1000)  # sparklines (range queries) are refreshed every N ticks
    # labwall flavor: lab-wide GPU-hours per user (two instant queries over 7 days) every N readings.
    usage_every: int = Field(30, ge=1, le=100000)
    # labwall: labwall's own /metrics; dcgm: NVIDIA DCGM-exporter plus node_exporter.
    flavor: Literal["labwall", "dcgm"] = "labwall"
    dcgm_host_label: str = Field("Hostname", min_length=1)  # DCGM series label holding the host name
    node_host_label: str = Field("instance", min_length=1)  # node_exporter label holding it (":port" dropped)
    forget_after_s: PositiveSeconds = 86400.0  # a host down this long leaves the wall

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not re.match(r"^https?://[^\s/]+\S*$", url):
            raise ValueError("must be an http:// or https:// URL of a Prometheus server (or null for off)")
        return url.rstrip("/") if url else url

    @field_validator("host_selector")
    @classmethod
    def _regex(cls, pattern: str) -> str:
        return valid_regex(pattern)

    @field_validator("dcgm_host_label", "node_host_label")
    @classmethod
    def _label_name(cls, name: str) -> str:
        if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name):
            raise ValueError("must be a Prometheus label name (letters, digits, _; not starting with a digit)")
        return name
