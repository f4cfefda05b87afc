"""The `runs:` config section (config.yaml documents every key)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from monitor.model.settings import PositiveSeconds, Section


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
