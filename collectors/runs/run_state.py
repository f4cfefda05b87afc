"""What the runs collector keeps per run, and the sources its layout needs."""

from __future__ import annotations

from dataclasses import dataclass, field

from collectors.runs.discovery import RunLayout
from collectors.runs.sources import GroupSource, ParamsSource, Source, SourceSettings
from collectors.runs.status import RunProgress


@dataclass
class RunState:
    id: str
    layout: RunLayout
    progress: RunProgress = field(default_factory=RunProgress)
    sources: dict[str, Source] = field(default_factory=dict)
    deleted: bool = False
    loaded: bool = False  # every file read once
    settled: bool = False  # its status after loading is set: later changes are announced
    announce: bool = False
    time_bound: bool = True  # its status may change with time alone (running: may stall)
    params: dict[str, dict[str, object]] = field(default_factory=dict)  # source key -> hyperparameters it read


def sources_for(layout: RunLayout, existing: dict[str, Source], settings: SourceSettings) -> dict[str, Source]:
    """The sources a run layout needs, keyed by path (groups: run dir + "#" + kind), in first-read order;
    existing ones are kept."""
    wanted: dict[str, Source] = {}
    for kind, paths in layout.files:
        if not kind.grouped:
            for path in paths:
                wanted[path] = existing.get(path) or kind.open(path, settings)
            continue
        key = f"{layout.path}#{kind.name}"
        group = existing.get(key)
        if not isinstance(group, GroupSource):
            group = kind.open(layout.path, settings)
            if not isinstance(group, GroupSource):
                raise TypeError(f"file kind {kind.name!r} is grouped but opens a {type(group).__name__}")
        group.set_paths(paths)
        wanted[key] = group
    read_params = layout.spec.read_params
    if layout.hyperparameters and read_params is not None:
        key = f"{layout.path}#params"
        params = existing.get(key)
        if not isinstance(params, ParamsSource):
            params = ParamsSource(layout.path, read_params)
        params.set_paths(list(layout.hyperparameters))
        wanted[key] = params
    return wanted
