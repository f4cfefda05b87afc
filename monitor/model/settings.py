"""Building blocks of the config sections, and what a collector may know of the other sections.

The app's sections (monitor/config.py) and each collector's own section (next to its collector)
are built from these, so every section rejects unknown keys and reads durations the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from monitor.model.store import Store

PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Ratio = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]


class Section(BaseModel):
    # Unknown keys are errors: a typo must never be silently ignored.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def valid_regex(pattern: str) -> str:
    """`pattern` when it compiles; a ValueError that quotes it otherwise (for field validators)."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a valid regular expression ({exc})") from None
    return pattern


@dataclass(frozen=True, slots=True)
class CollectorContext:
    """What a collector's factory gets besides its own section: the store it writes to and the few
    settings of other sections it depends on (filled in by monitor/app.py)."""

    store: Store
    run_roots: tuple[Path, ...] = ()  # runs.roots: the runs collector's roots, the host's disks
    disk_full_ratio: float = 0.90  # thresholds.disk_ratio
    redaction_patterns: tuple[str, ...] = ()  # redaction.extra_patterns, for GPU process commands
    gpu_enabled: bool = True  # gpu.enabled: the join collector needs GPU processes to join
