"""The simulated GPU backend: moving fake GPUs, clearly labelled, for demos and machines without any.

It reuses the NVML backend's reading code (collectors/gpu/nvml.py) over SimulatedNvml, a module
double of `pynvml` (collectors/gpu/sim_nvml.py), so the simulation exercises the same field
readers, error handling and XID events as real GPUs. Its pids are the scenario's, never looked up
among this machine's processes. The scenario file (gpu.simulated_scenario) is read here too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from collectors.gpu.backend import GpuBackendSpec, GpuSettings
from collectors.gpu.nvml import NvmlBackend
from collectors.gpu.processes import Resolver
from collectors.gpu.sim_nvml import SimulatedNvml


class SimulatedBackend(NvmlBackend):
    simulated = True

    def __init__(self, nvml: SimulatedNvml, name: str = "simulated") -> None:
        super().__init__(nvml, name)
        self.sim = nvml

    def process_resolver(self) -> Resolver | None:
        return self.sim.process_info


def load_scenario(path: Path) -> dict[str, Any]:
    """Read a simulated-GPU scenario file; a ValueError names the file and what is wrong with it."""
    try:
        scenario = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"gpu.simulated_scenario: cannot read {str(path)!r}: {exc}") from None
    if not isinstance(scenario, dict):
        raise ValueError(f"gpu.simulated_scenario: {str(path)!r} must hold a JSON object")
    return scenario


def check_scenario(path: Path) -> None:
    """Raise a ValueError naming what is wrong when the scenario file cannot drive the simulation."""
    SimulatedNvml(scenario=load_scenario(path))


def open_simulated(section: GpuSettings, scenario: dict[str, Any] | None = None) -> SimulatedBackend:
    """The backend for gpu.simulated_count GPUs, or the GPUs of `scenario` / gpu.simulated_scenario."""
    if scenario is None and section.simulated_scenario is not None:
        scenario = load_scenario(Path(section.simulated_scenario))
    try:
        return SimulatedBackend(SimulatedNvml(section.simulated_count, scenario=scenario))
    except ValueError as exc:
        raise ValueError(f"gpu.simulated_scenario: {exc}") from None


BACKEND = GpuBackendSpec("simulated", open_simulated)
