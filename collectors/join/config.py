"""The `join:` config section (config.yaml documents every key)."""

from __future__ import annotations

from pydantic import Field

from monitor.model.settings import PositiveSeconds, Section


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
