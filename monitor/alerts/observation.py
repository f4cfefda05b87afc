"""What a rule says about one subject in one tick (`Observation`, `RuleResult`), and how long a
condition held, in the wall's words."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from monitor.model.durations import duration


@dataclass(slots=True)
class Observation:
    key: str  # stable per subject: "gpu3", a run id, a path, a collector name
    subject: str  # for people: "GPU 3", "run llama-ft", "/data/runs"
    title: str  # headline: "GPU 3 hot"
    raising: bool
    holding: bool
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RuleResult:
    known: bool = True  # False: the source is stale or absent; every alert of the rule keeps its state
    observations: dict[str, Observation] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)  # subjects without a reading this tick

    def add(self, obs: Observation) -> None:
        self.observations[obs.key] = obs


def duration_text(seconds: float) -> str:
    """How long a condition held, in the words the wall uses everywhere (monitor/model/durations.py)."""
    return duration(max(0.0, seconds), coarse=True)
