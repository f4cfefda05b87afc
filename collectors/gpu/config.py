"""The `gpu:` and `redaction:` config sections (config.yaml documents every key)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from collectors.gpu.backend import gpu_backends
from collectors.gpu.simulated import check_scenario
from monitor.model.settings import PositiveSeconds, Section, valid_regex


def _choices(names: list[str]) -> str:
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


class GpuConfig(Section):
    enabled: bool = True
    backend: str = "nvml"  # a declared backend (collectors/gpu/backend.py: gpu_backends)
    interval_s: PositiveSeconds = 1.0
    nvml_retry_s: PositiveSeconds = 60.0
    simulated_count: int = Field(4, ge=1, le=64)
    # JSON file describing simulated GPUs, processes and events (demos, tests); None: generated.
    simulated_scenario: Path | None = None

    @field_validator("backend", mode="before")
    @classmethod
    def _declared_backend(cls, name: Any) -> str:
        names = list(gpu_backends())
        if not isinstance(name, str) or name not in names:
            raise ValueError(f"Input should be {_choices(names)}")  # pydantic's wording for a choice
        return name

    @field_validator("simulated_scenario")
    @classmethod
    def _scenario_usable(cls, path: Path | None) -> Path | None:
        if path is None:
            return None
        if not path.is_file():
            raise ValueError(f"file {str(path)!r} not found")
        check_scenario(path)  # raises ValueError naming what is wrong
        return path


class RedactionConfig(Section):
    """More secrets to mask in GPU process commands (collectors/gpu/redact.py): group 1, else the match."""

    extra_patterns: list[str] = Field(default_factory=list)

    @field_validator("extra_patterns")
    @classmethod
    def _compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            valid_regex(pattern)
        return patterns
