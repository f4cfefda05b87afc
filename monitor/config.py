"""Configuration: a pydantic schema for config.yaml, validated on load with one clear line per problem.

The schema is the app's own sections (below) plus the section each declared collector brings
(collectors/registry.py): a new collector adds its key here without an edit to this file.
"""

from __future__ import annotations

import math
import os
import re
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, IPvAnyNetwork, ValidationError, create_model, field_validator, model_validator

# The collectors' sections, for the layers above that read them (alerts, views, tests).
from collectors.gpu.config import GpuConfig, RedactionConfig
from collectors.host import HostConfig
from collectors.join.config import JoinConfig
from collectors.prometheus.config import PrometheusConfig
from collectors.registry import declared_specs
from collectors.runs.config import MainMetricRule, RunsConfig
from monitor.model.settings import PositiveSeconds, Ratio, Seconds, Section

__all__ = [  # the app's sections, the collectors' sections it re-exports, and the loaders
    "APP_SECTIONS", "AlertRule", "AlertsConfig", "CollectorDownAlert", "Config", "ConfigError", "DiskFullAlert",
    "EventsConfig", "GpuConfig", "GpuHotAlert", "GpuIdleAlert", "GpuLostAlert", "GpuMemoryAlert", "GpuXidAlert",
    "HistoryConfig", "HostConfig", "JoinConfig", "MainMetricRule", "PrometheusConfig", "RedactionConfig",
    "RunCrashedAlert", "RunStalledAlert", "RunsConfig", "Section", "ServerConfig", "Severity", "StorageConfig",
    "ThresholdsConfig",
    "WallConfig", "WebhookConfig", "format_validation_error", "load_config", "parse_config",
]  # fmt: skip


class ConfigError(Exception):
    """A config file that cannot be used; `problems` holds one line per bad key."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))

    def render(self) -> str:
        lines = [f"labwall: invalid configuration in {self.source}:"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


class ServerConfig(Section):
    bind: str = Field("0.0.0.0", min_length=1)
    port: int = Field(8080, ge=1, le=65535)
    # Optional view restriction (monitor/web/access.py); off by default.
    allow: list[IPvAnyNetwork] = Field(default_factory=list)  # networks allowed to see anything; []: all
    token: str | None = None  # a secret; `?token=…` once sets a cookie (a kiosk URL)
    metrics_allow: list[IPvAnyNetwork] | None = None  # may scrape /metrics without a token; None: page rules
    healthz_open: bool = True  # /healthz answers everyone (a load balancer)

    @field_validator("token")
    @classmethod
    def _token_shape(cls, token: str | None) -> str | None:
        if token is not None and not re.fullmatch(r"[A-Za-z0-9._~-]{16,256}", token):
            raise ValueError("must be 16 to 256 URL-safe characters (letters, digits, . _ ~ -); "
                             "e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(24))'")
        return token


class HistoryConfig(Section):
    window_s: PositiveSeconds = 600.0
    day_tier: bool = True


class WallConfig(Section):
    flush_interval_s: PositiveSeconds = 1.0
    # Time span of the wall's charts; beyond history.window_s the 1-minute tier is used (max 24 h).
    chart_window_s: float = Field(600.0, gt=0, le=86400, allow_inf_nan=False)
    stale_after_intervals: float = Field(3.0, gt=0, allow_inf_nan=False)
    title: str = "labwall"


class ThresholdsConfig(Section):
    gpu_temp_c: float = Field(85.0, gt=0, le=150, allow_inf_nan=False)
    gpu_memory_ratio: Ratio = 0.95
    gpu_idle_util_percent: float = Field(5.0, ge=0, le=100, allow_inf_nan=False)
    gpu_idle_after_s: PositiveSeconds = 600.0
    disk_ratio: Ratio = 0.90


Severity = Literal["warning", "critical"]


class AlertRule(Section):
    """Common keys of one alert rule; `for_s`: the condition must hold this long before it is raised,
    `clear_after_s`: it must be false (past its hysteresis) this long before the alert clears."""

    enabled: bool = True
    severity: Severity = "warning"
    for_s: Seconds = 30.0
    clear_after_s: Seconds = 60.0


class GpuIdleAlert(AlertRule):
    for_s: Seconds | None = None  # None: thresholds.gpu_idle_after_s
    hysteresis_percent: float = Field(5.0, ge=0, le=100, allow_inf_nan=False)


class GpuHotAlert(AlertRule):
    hysteresis_c: float = Field(5.0, ge=0, le=50, allow_inf_nan=False)
    thermal_throttling: bool = True  # hw/sw thermal slowdown also raises it, whatever the temperature


class GpuMemoryAlert(AlertRule):
    for_s: Seconds = 60.0
    hysteresis_ratio: float = Field(0.03, ge=0, lt=1, allow_inf_nan=False)


class GpuLostAlert(AlertRule):
    severity: Severity = "critical"
    for_s: Seconds = 0.0
    clear_after_s: Seconds = 30.0


class GpuXidAlert(AlertRule):
    """XIDs are events, not states: each one keeps the alert raised for `hold_s`."""

    severity: Severity = "critical"
    for_s: Seconds = 0.0
    clear_after_s: Seconds = 0.0
    hold_s: PositiveSeconds = 600.0
    # XIDs that raise nothing (still logged), e.g. [13, 31, 43]: faults of the application, not the GPU.
    ignore_codes: list[Annotated[int, Field(gt=0)]] = Field(default_factory=list)


class DiskFullAlert(AlertRule):
    severity: Severity = "critical"
    for_s: Seconds = 60.0
    clear_after_s: Seconds = 300.0
    hysteresis_ratio: float = Field(0.02, ge=0, lt=1, allow_inf_nan=False)


class RunStalledAlert(AlertRule):
    for_s: Seconds = 0.0  # runs.stall_min_s already waited
    clear_after_s: Seconds = 0.0
    max_age_s: PositiveSeconds = 21600.0  # no data for longer: an abandoned run, not news


class RunCrashedAlert(AlertRule):
    severity: Severity = "critical"
    for_s: Seconds = 0.0
    clear_after_s: Seconds = 0.0
    active_s: PositiveSeconds = 1800.0  # viewers cannot acknowledge: it clears this long after the crash


class CollectorDownAlert(AlertRule):
    severity: Severity = "critical"
    clear_after_s: Seconds = 10.0


class WebhookConfig(Section):
    url: str | None = None  # None: no notifications
    format: Literal["slack", "json"] = "slack"
    timeout_s: PositiveSeconds = 5.0
    max_retries: int = Field(5, ge=0, le=20)
    backoff_s: PositiveSeconds = 2.0  # first retry after this, doubling each time (capped at 300 s)
    queue_size: int = Field(100, ge=1, le=10_000)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not re.match(r"^https?://[^\s/]+\S*$", url):
            raise ValueError("must be an http:// or https:// URL (or null for no webhook)")
        return url


class AlertsConfig(Section):
    enabled: bool = True
    interval_s: PositiveSeconds = 1.0
    recent_max: int = Field(100, ge=0, le=10_000)
    # A GPU or system reading older than this (and 3 of its intervals) is unknown: its alerts neither raise nor clear.
    stale_after_s: PositiveSeconds = 10.0
    gpu_idle: GpuIdleAlert = Field(default_factory=GpuIdleAlert)
    gpu_hot: GpuHotAlert = Field(default_factory=GpuHotAlert)
    gpu_memory_full: GpuMemoryAlert = Field(default_factory=GpuMemoryAlert)
    gpu_lost: GpuLostAlert = Field(default_factory=GpuLostAlert)
    gpu_xid: GpuXidAlert = Field(default_factory=GpuXidAlert)
    disk_full: DiskFullAlert = Field(default_factory=DiskFullAlert)
    run_stalled: RunStalledAlert = Field(default_factory=RunStalledAlert)
    run_crashed: RunCrashedAlert = Field(default_factory=RunCrashedAlert)
    collector_down: CollectorDownAlert = Field(default_factory=CollectorDownAlert)
    webhook: WebhookConfig = Field(default_factory=WebhookConfig)


class EventsConfig(Section):
    capacity: int = Field(1000, ge=10, le=1_000_000)


class StorageConfig(Section):
    """Durable history in an embedded SQLite file (monitor/model/storage; README "History and storage")."""

    enabled: bool = True
    # null: $STATE_DIRECTORY/labwall.db under systemd, else data/labwall.db beside the config file;
    # a relative path is taken from the config file's directory.
    path: Path | None = None
    flush_s: float = Field(10.0, ge=0.1, le=300, allow_inf_nan=False)
    minute_retention_days: float = Field(14.0, gt=0, le=3660, allow_inf_nan=False)
    hour_retention_days: float = Field(400.0, gt=0, le=36600, allow_inf_nan=False)
    queue_max: int = Field(100_000, ge=100, le=10_000_000)

    @field_validator("path")
    @classmethod
    def _file_path(cls, path: Path | None) -> Path | None:
        if path is not None and (str(path).strip() == "" or path.is_dir()):
            raise ValueError("must be the path of a database file, not a directory")
        return path

    @model_validator(mode="after")
    def _hours_outlive_minutes(self) -> StorageConfig:
        if self.hour_retention_days < self.minute_retention_days:
            raise ValueError(f"hour_retention_days ({self.hour_retention_days:g}) is shorter than "
                             f"minute_retention_days ({self.minute_retention_days:g})")
        return self

    def file(self, config_dir: Path, environ: dict[str, str] | None = None) -> Path:
        """The database file this configuration names, resolved."""
        if self.path is not None:
            return self.path if self.path.is_absolute() else config_dir / self.path
        state = (os.environ if environ is None else environ).get("STATE_DIRECTORY", "").split(":")[0]
        return Path(state) / "labwall.db" if state else config_dir / "data" / "labwall.db"


class _AppConfig(Section):
    """The keys before the collectors' sections; the rest follow them (APP_SECTIONS)."""

    host_label: str = Field(default_factory=socket.gethostname, min_length=1, max_length=128)
    server: ServerConfig = Field(default_factory=ServerConfig)
    history: HistoryConfig = Field(default_factory=HistoryConfig)

    @model_validator(mode="after")
    def _window_holds_samples(self) -> Any:
        intervals = [getattr(self, s.name).interval_s for s in declared_specs() if s.feeds_history]
        fastest = min(intervals, default=math.inf)
        if self.history.window_s < fastest:
            raise ValueError(
                f"history.window_s ({self.history.window_s:g}) is shorter than the fastest "
                f"collector interval ({fastest:g} s)"
            )
        return self


# The app's sections after the collectors' (config key -> section model, in config.yaml's order).
APP_SECTIONS: dict[str, type[Section]] = {
    "wall": WallConfig,
    "thresholds": ThresholdsConfig,
    "alerts": AlertsConfig,
    "redaction": RedactionConfig,
    "events": EventsConfig,
    "storage": StorageConfig,
}


def _build_config_model() -> type[_AppConfig]:
    sections = {spec.name: spec.section for spec in declared_specs()}
    clash = sorted(set(sections) & (set(APP_SECTIONS) | set(_AppConfig.model_fields)))
    if clash:
        raise RuntimeError(f"collector sections clash with the app's: {', '.join(clash)}")
    fields: dict[str, Any] = {
        key: (model, Field(default_factory=model)) for key, model in {**sections, **APP_SECTIONS}.items()
    }
    return create_model("Config", __base__=_AppConfig, __module__=__name__, **fields)


# config.yaml's schema: `config.gpu`, `config.runs`, ... are the declared collectors' sections.
Config = _build_config_model()

_REASONS = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "finite_number": "must be a finite number",
    "string_too_short": "must not be empty",
}


def _format_error(error: dict[str, Any]) -> str:
    path = ".".join(str(p) for p in error["loc"]) or "(top level)"
    reason = error["msg"]
    template = _REASONS.get(error["type"])
    if template:
        ctx = {k: _num(v) for k, v in (error.get("ctx") or {}).items()}
        reason = template.format(**ctx) if error["type"] != "string_too_short" or ctx.get("min_length") == 1 else reason
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown key — check the spelling; see config.yaml for the keys labwall knows"
    for prefix in ("Value error, ", "Assertion failed, "):
        reason = reason.removeprefix(prefix)
    reason = reason[0].lower() + reason[1:] if reason else reason
    if error["type"] == "missing":
        return f"{path}: missing — {reason}"
    value = error.get("input")
    return f"{path}: {_short(value)} — {reason}"


def _num(value: Any) -> Any:
    return f"{value:g}" if isinstance(value, float) else value


def format_validation_error(exc: ValidationError) -> list[str]:
    return [_format_error(e) for e in exc.errors()]


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True).strip()
    text = text.removesuffix("\n...").strip()
    return text if len(text) <= 60 else text[:57] + "..."


def parse_config(data: Any, source: str = "<config>") -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [f"(top level): must be a mapping of keys to values, not {type(data).__name__}"])
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, format_validation_error(exc)) from None


def load_config(path: Path) -> Config:
    """Read and validate a config file; raise ConfigError with a readable reason for every problem."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, ["file not found — pass --config PATH or create config.yaml"]) from None
    except IsADirectoryError:
        raise ConfigError(source, ["is a directory, not a config file"]) from None
    except PermissionError:
        raise ConfigError(source, ["cannot be read: permission denied"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [f"is not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"YAML syntax error at {where}: {problem}"]) from None
    return parse_config(data, source)
