"""Declared collectors: the spec each collector module exports as `SPEC`, found without a list.

A collector is a module or sub-package of `collectors` whose top level defines `SPEC`, a
CollectorSpec: its name (also its config key), its config section model and its factory. The
config (monitor/config.py) adds every declared section under its name, and the app
(monitor/app.py) calls every factory, in `order`; neither names a collector.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import collectors
from collectors.base import Collector
from monitor.model.settings import CollectorContext, Section


@dataclass(frozen=True, slots=True)
class CollectorSpec:
    name: str  # the config key of its section, and the collector's name in /healthz
    section: type[Section]  # its config section; every key needs a default (config.yaml may omit it)
    # (its section, context) -> the collector, or None when the config leaves it off
    build: Callable[[Any, CollectorContext], Collector | None]
    order: int  # collectors are built and started by ascending order
    # Its `interval_s` samples series kept for history.window_s, which must hold at least one.
    feeds_history: bool = False


def find_specs(package: Any = collectors) -> list[CollectorSpec]:
    """Every SPEC of `package`'s modules and sub-packages, in build order; names must be unique."""
    specs: list[CollectorSpec] = []
    for info in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
        spec = getattr(importlib.import_module(info.name), "SPEC", None)
        if isinstance(spec, CollectorSpec):
            specs.append(spec)
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RuntimeError(f"two collectors declare the same name: {', '.join(duplicates)}")
    return sorted(specs, key=lambda s: (s.order, s.name))


@functools.cache
def declared_specs() -> tuple[CollectorSpec, ...]:
    """The collectors of this installation (imported once)."""
    return tuple(find_specs())


def build_collectors(sections: Mapping[str, Any], context: CollectorContext) -> list[Collector]:
    """The collectors that `sections` (config key -> that collector's section) turn on, in order."""
    built = (spec.build(sections[spec.name], context) for spec in declared_specs())
    return [c for c in built if c is not None]
