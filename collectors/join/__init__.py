"""Which run each GPU process writes; declared as `join` (on with GPUs and run roots)."""

from __future__ import annotations

from collectors.join.collector import RunJoinCollector
from collectors.join.config import JoinConfig
from collectors.registry import CollectorSpec
from monitor.model.settings import CollectorContext


def build_join_collector(section: JoinConfig, context: CollectorContext) -> RunJoinCollector | None:
    if not (section.enabled and context.gpu_enabled and context.run_roots):
        return None
    return RunJoinCollector(context.store, section, roots=[str(r) for r in context.run_roots])


SPEC = CollectorSpec("join", JoinConfig, build_join_collector, order=40)
