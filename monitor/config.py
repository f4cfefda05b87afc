"""Configuration: a pydantic schema for config.yaml, validated on load with one clear line per problem."""

from __future__ import annotations

import math
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
        from collectors.gpu import load_scenario
        from collectors.gpu_simulated import SimulatedNvml

        SimulatedNvml(scenario=load_scenario(path))  # raises ValueError naming what is wrong
        return path


class HostConfig(Section):
    enabled: bool = True
    interval_s: PositiveSeconds = 1.0


class RunsConfig(Section):
    roots: list[Path] = Field(default_factory=list)
    max_depth: int = Field(4, ge=1, le=32)
    rescan_s: PositiveSeconds = 10.0
    forget_after_s: PositiveSeconds = 86400.0


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


class Config(Section):
    host_label: str = Field(default_factory=socket.gethostname, min_length=1, max_length=128)
    server: ServerConfig = Field(default_factory=ServerConfig)
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    gpu: GpuConfig = Field(default_factory=GpuConfig)
    host: HostConfig = Field(default_factory=HostConfig)
    runs: RunsConfig = Field(default_factory=RunsConfig)
    wall: WallConfig = Field(default_factory=WallConfig)
    thresholds: ThresholdsConfig = Field(default_factory=ThresholdsConfig)
    redaction: RedactionConfig = Field(default_factory=RedactionConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)

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
