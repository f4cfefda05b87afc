"""Configuration: a pydantic schema for config.yaml, validated on load with one clear line per problem."""

from __future__ import annotations

import math
import os
import re
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Ratio = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]


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


class Section(BaseModel):
    # Unknown keys are errors: a typo must never be silently ignored.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ServerConfig(Section):
    bind: str = Field("0.0.0.0", min_length=1)
    port: int = Field(8080, ge=1, le=65535)


class HistoryConfig(Section):
    window_s: PositiveSeconds = 600.0
    day_tier: bool = True


class GpuConfig(Section):
    enabled: bool = True
    backend: Literal["nvml", "simulated"] = "nvml"
    interval_s: PositiveSeconds = 1.0
    nvml_retry_s: PositiveSeconds = 60.0
    simulated_count: int = Field(4, ge=1, le=64)
    # JSON file describing simulated GPUs, processes and events (demos, tests); None: generated.
    simulated_scenario: Path | None = None

    @field_validator("simulated_scenario")
    @classmethod
    def _scenario_usable(cls, path: Path | None) -> Path | None:
        if path is None:
            return None
        if not path.is_file():
            raise ValueError(f"file {str(path)!r} not found")
        # Imported here: the simulated backend lives with the collectors, which import this module.
        from collectors.gpu.collector import load_scenario
        from collectors.gpu.simulated import SimulatedNvml

        SimulatedNvml(scenario=load_scenario(path))  # raises ValueError naming what is wrong
        return path


class HostConfig(Section):
    enabled: bool = True
    interval_s: PositiveSeconds = 1.0


class MainMetricRule(Section):
    run: str = Field("*", min_length=1)  # glob on the run's name (its path below the root)
    metric: str = Field("loss", min_length=1)  # glob on its metric names


class RunsConfig(Section):
    roots: list[Path] = Field(default_factory=list)
    max_depth: int = Field(4, ge=1, le=32)
    rescan_s: PositiveSeconds = 10.0
    forget_after_s: PositiveSeconds = 86400.0
    # How often the run watcher reads what changed (the latency of a new line, with file events).
    interval_s: float = Field(0.1, ge=0.01, le=10, allow_inf_nan=False)
    # false: no inotify/watchdog events, only the rescan (network filesystems send none anyway).
    use_events: bool = True
    stall_factor: float = Field(10.0, ge=1, allow_inf_nan=False)
    stall_min_s: PositiveSeconds = 120.0
    max_points_per_metric: int = Field(100_000, ge=100, le=10_000_000)
    max_line_bytes: int = Field(1_048_576, ge=1024, le=256 * 1_048_576)
    # A last line still without its newline after this long is read as it is (the writer stopped mid-line).
    unterminated_line_s: PositiveSeconds = 60.0
    # Seconds between looks at /proc for the processes writing runs; 0 turns the writer rule off.
    writer_check_s: float = Field(5.0, ge=0, allow_inf_nan=False)
    main_metric: list[MainMetricRule] = Field(default_factory=lambda: [MainMetricRule(run="*", metric="loss")])


class JoinConfig(Section):
    """Joining GPU processes to the runs they write (collectors/join/collector.py)."""

    enabled: bool = True
    interval_s: PositiveSeconds = 2.0
    # A process joined to a run is read again (its /proc: open files, cwd, command line) this often.
    recheck_s: PositiveSeconds = 30.0
    # A process not joined yet (it may open its run's files later) is read again this often.
    retry_s: PositiveSeconds = 5.0
    # Seconds of /proc reading per tick; processes that do not fit are read on the next ticks.
    budget_s: float = Field(0.1, gt=0, le=10, allow_inf_nan=False)
    # Parent processes (launchers: torchrun, accelerate, python -m, bash) looked at, nearest first.
    parent_levels: int = Field(4, ge=0, le=16)


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
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]


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


class RedactionConfig(Section):
    extra_patterns: list[str] = Field(default_factory=list)

    @field_validator("extra_patterns")
    @classmethod
    def _compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regular expression ({exc})") from None
        return patterns


class EventsConfig(Section):
    capacity: int = Field(1000, ge=10, le=1_000_000)


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
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{pattern!r} is not a valid regular expression ({exc})") from None
        return pattern

    @field_validator("dcgm_host_label", "node_host_label")
    @classmethod
    def _label_name(cls, name: str) -> str:
        if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name):
            raise ValueError("must be a Prometheus label name (letters, digits, _; not starting with a digit)")
        return name


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


class Config(Section):
    host_label: str = Field(default_factory=socket.gethostname, min_length=1, max_length=128)
    server: ServerConfig = Field(default_factory=ServerConfig)
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    gpu: GpuConfig = Field(default_factory=GpuConfig)
    host: HostConfig = Field(default_factory=HostConfig)
    runs: RunsConfig = Field(default_factory=RunsConfig)
    join: JoinConfig = Field(default_factory=JoinConfig)
    wall: WallConfig = Field(default_factory=WallConfig)
    thresholds: ThresholdsConfig = Field(default_factory=ThresholdsConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    redaction: RedactionConfig = Field(default_factory=RedactionConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    prometheus: PrometheusConfig = Field(default_factory=PrometheusConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)

    @model_validator(mode="after")
    def _window_holds_samples(self) -> Config:
        fastest = min(self.gpu.interval_s, self.host.interval_s)
        if self.history.window_s < fastest:
            raise ValueError(
                f"history.window_s ({self.history.window_s:g}) is shorter than the fastest "
                f"collector interval ({fastest:g} s)"
            )
        return self

    def raw_capacity(self, interval_s: float) -> int:
        """Points a series sampled every `interval_s` needs to cover the history window."""
        return max(2, math.ceil(self.history.window_s / interval_s) + 1)


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
