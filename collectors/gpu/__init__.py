"""GPUs: a vendor-neutral collector over a GpuBackend (NVML, simulated); declared as `gpu`."""

from __future__ import annotations

from collectors.gpu.backend import GpuBackend, gpu_backends
from collectors.gpu.collector import GpuCollector
from collectors.gpu.config import GpuConfig
from collectors.gpu.processes import ProcessLookup
from collectors.gpu.redact import Redactor
from collectors.registry import CollectorSpec
from monitor.model.settings import CollectorContext


def build_gpu_collector(
    section: GpuConfig, context: CollectorContext, backend: GpuBackend | None = None
) -> GpuCollector | None:
    """The GPU collector the section asks for, or None when GPUs are disabled; `backend` replaces the
    configured one (tests, benchmarks). Raises ValueError for a scenario that cannot be used."""
    if not section.enabled:
        return None
    if backend is None:
        backend = gpu_backends()[section.backend].open(section)
    # A backend whose pids are not this machine's (simulated) resolves them itself.
    processes = ProcessLookup(Redactor(context.redaction_patterns), backend.process_resolver())
    return GpuCollector(
        context.store, section.interval_s, backend, processes=processes, retry_s=section.nvml_retry_s
    )


SPEC = CollectorSpec("gpu", GpuConfig, build_gpu_collector, order=20, feeds_history=True)
