"""The simulated lab behind SimulatedNvml: GPUs, their jobs and processes, and the values they show.

Values are pure functions of the clock (a training-like pattern: long steps at full load, eval
dips, checkpoint pauses; temperatures lag the load; power tracks its limit), so two readings at
the same time agree and nothing drifts over months of uptime. A scenario (JSON) can replace the
generated GPUs, e.g. to put hostile strings in user names and commands, and schedule GPU losses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import pynvml

MIB = 1024 * 1024
GIB = 1024 * MIB
DEFAULT_NAME = "NVIDIA H100 80GB HBM3 (simulated)"
DEFAULT_MEMORY_BYTES = 81559 * MIB
DEFAULT_POWER_LIMIT_W = 700.0
CYCLE_S = 180.0  # one train → eval → checkpoint cycle


@dataclass(slots=True)
class SimProcess:
    pid: int
    user: str | None
    command: str
    gpu_memory_bytes: int | None
    sm_percent: float | None = None
    type: str = "compute"  # "compute" | "graphics"


@dataclass(slots=True)
class SimGpu:
    index: int
    name: str
    uuid: str
    memory_total_bytes: int
    power_limit_watts: float
    has_fan: bool
    phase: float
    processes: list[SimProcess] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=dict)  # GpuReading field → fixed value


@dataclass(slots=True)
class GpuReading:
    """One device's values in NVML's own units (mW, KB/s, MHz); None → "not supported"."""

    utilization_gpu: int | None
    utilization_memory: int | None
    memory_used_bytes: int | None
    memory_total_bytes: int | None
    temperature_c: int | None
    power_mw: int | float | None
    power_limit_mw: int | None
    fan_percent: int | None
    clock_sm_mhz: int | None
    clock_mem_mhz: int | None
    pstate: int | None
    clocks_event_reasons: int | None
    pcie_rx_kbps: int | None
    pcie_tx_kbps: int | None
    ecc_enabled: bool | None
    ecc_corrected: int | None
    ecc_uncorrected: int | None


READING_FIELDS = frozenset(f.name for f in fields(GpuReading))


@dataclass(frozen=True, slots=True)
class SimEvent:
    """GPU `gpu` is lost (or answers again) from `at_s` seconds after the simulation started."""

    at_s: float
    gpu: int
    lost: bool


# Per-GPU process sets, cycled over the GPUs; the last GPU of a multi-GPU box stays idle.
_DDP = (
    "python -m torch.distributed.run --nproc_per_node=2 train_llm.py --config configs/llama3-8b.yaml "
    "--hf_token hf_SiMuLaTeDnOtArEaLtOkEn0123456789ab --output_dir /data/runs/llama3-8b"
)
_TEMPLATES: list[list[tuple[str, str, float]]] = [
    [("alice", _DDP, 0.86)],
    [("alice", _DDP, 0.86)],
    [
        (
            "bob",
            "python finetune.py --model bert-base-uncased --tokenizer bert-base-uncased --lr 3e-4 "
            "--wandb_api_key 0123456789abcdef0123456789abcdef01234567",
            0.41,
        ),
        (
            "carol",
            "/opt/conda/bin/python -m ipykernel_launcher -f /home/carol/.local/share/jupyter/k-1.json",
            0.12,
        ),
    ],
    [
        (
            "dave",
            "python eval.py --ckpt /data/ckpt/step-12000 --api-key sk-simulatedNotARealKey0123456789abcdef "
            "--push-to s3://dave:hunter2@minio.lab:9000/evals",
            0.33,
        ),
    ],
]


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def _uuid(index: int) -> str:
    return f"GPU-5140a7ed-0000-4000-8000-{index:012x}"


def default_gpus(count: int) -> list[SimGpu]:
    gpus = []
    for i in range(count):
        idle = count > 1 and i == count - 1
        template = [] if idle else _TEMPLATES[i % len(_TEMPLATES)]
        processes = [
            SimProcess(
                pid=40_000 + 100 * i + k,
                user=user,
                command=command,
                gpu_memory_bytes=int(DEFAULT_MEMORY_BYTES * share),
            )
            for k, (user, command, share) in enumerate(template)
        ]
        gpus.append(
            SimGpu(
                i,
                DEFAULT_NAME,
                _uuid(i),
                DEFAULT_MEMORY_BYTES,
                DEFAULT_POWER_LIMIT_W,
                has_fan=False,
                phase=(i // 2) * 0.37 % 1.0,
                processes=processes,
            )
        )
    return gpus


def gpus_from_scenario(scenario: dict[str, Any]) -> list[SimGpu]:
    """Build GPUs from `{"gpus": [{"name": ..., "processes": [{"pid", "user", "command",
    "gpu_memory_bytes"}]}]}`. Optional per GPU: uuid, memory_total_bytes, power_limit_watts, fan,
    and "readings": {GpuReading field: value in NVML units, or null for "not supported"}."""
    entries = scenario.get("gpus") if isinstance(scenario, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError("scenario must be a mapping with a non-empty list under 'gpus'")
    gpus = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValueError(f"scenario gpus[{i}] must be a mapping")
        processes = []
        for k, p in enumerate(entry.get("processes") or []):
            if not isinstance(p, dict) or not isinstance(p.get("pid"), int):
                raise ValueError(f"scenario gpus[{i}].processes[{k}] needs an integer 'pid'")
            memory = p.get("gpu_memory_bytes", GIB)
            processes.append(
                SimProcess(
                    p["pid"],
                    str(p["user"]) if p.get("user") is not None else None,
                    str(p.get("command", "")),
                    int(memory) if memory is not None else None,
                    type=str(p.get("type", "compute")),
                )
            )
        overrides = entry.get("readings") or {}
        unknown = set(overrides) - READING_FIELDS if isinstance(overrides, dict) else {"(not a mapping)"}
        if unknown:
            raise ValueError(f"scenario gpus[{i}].readings: unknown fields {sorted(unknown)}")
        gpus.append(
            SimGpu(
                i,
                str(entry.get("name", DEFAULT_NAME)),
                str(entry.get("uuid", _uuid(i))),
                int(entry.get("memory_total_bytes", DEFAULT_MEMORY_BYTES)),
                float(entry.get("power_limit_watts", DEFAULT_POWER_LIMIT_W)),
                has_fan=bool(entry.get("fan", False)),
                phase=(i * 0.29) % 1.0,
                processes=processes,
                overrides=dict(overrides),
            )
        )
    return gpus


def events_from_scenario(scenario: dict[str, Any] | None, count: int) -> tuple[list[SimEvent], float | None]:
    """`"events": [{"at_s": 30, "gpu": 1, "event": "lost"}, {"at_s": 60, "gpu": 1, "event":
    "recovered"}]` and an optional `"repeat_s"` that replays them forever (for a demo wall)."""
    if scenario is None:
        return [], None
    events = []
    for k, e in enumerate(scenario.get("events") or []):
        ok = isinstance(e, dict) and e.get("event") in ("lost", "recovered") and isinstance(e.get("gpu"), int)
        if not ok or not 0 <= e["gpu"] < count or not isinstance(e.get("at_s"), int | float):
            raise ValueError(
                f"scenario events[{k}] needs at_s, a gpu index < {count} and event lost|recovered"
            )
        events.append(SimEvent(float(e["at_s"]), e["gpu"], e["event"] == "lost"))
    repeat = scenario.get("repeat_s")
    if repeat is not None and (not isinstance(repeat, int | float) or repeat <= 0):
        raise ValueError("scenario repeat_s must be a positive number of seconds")
    return sorted(events, key=lambda e: e.at_s), float(repeat) if repeat is not None else None


def lost_at(events: list[SimEvent], index: int, elapsed: float) -> bool:
    lost = False
    for event in events:
        if event.at_s > elapsed:
            break
        if event.gpu == index:
            lost = event.lost
    return lost


def load_at(gpu: SimGpu, t: float) -> float:
    """0..1: ~96 % while training, ~45 % during eval, ~6 % while a checkpoint is written."""
    if "utilization_gpu" in gpu.overrides:
        return _clamp((gpu.overrides["utilization_gpu"] or 0) / 100.0, 0.0, 1.0)
    if not gpu.processes:
        return 0.0
    x = (t / CYCLE_S + gpu.phase) % 1.0
    base = 0.96 if x < 0.82 else 0.45 if x < 0.94 else 0.06
    jitter = 0.02 * math.sin(t * 1.3 + 7 * gpu.phase) + 0.015 * math.sin(t * 0.37 + 3 * gpu.phase)
    return _clamp(base + jitter, 0.0, 1.0)


def simulate(gpu: SimGpu, t: float) -> GpuReading:
    load = load_at(gpu, t)
    # The die heats and cools over about a minute: average the load over the last 60 s.
    recent = sum(load_at(gpu, t - 2.5 * k) for k in range(24)) / 24
    temperature = 31.0 + 47.0 * recent + 0.6 * math.sin(t / 23.0 + gpu.index)
    limit = gpu.power_limit_watts
    idle_w = 0.1 * limit
    power = min(limit, idle_w + (limit - idle_w) * load * 0.99 + 4.0 * math.sin(t * 0.8 + gpu.index))
    capped = power >= 0.96 * limit
    busy = load > 0.02
    reasons = pynvml.nvmlClocksEventReasonSwPowerCap if capped else 0
    if not busy:
        reasons |= pynvml.nvmlClocksEventReasonGpuIdle
    sm_clock = 345 + int((1980 - 345) * min(1.0, load * 1.6)) - (150 if capped else 0)
    used = sum(p.gpu_memory_bytes or 0 for p in gpu.processes)
    used = used + 530 * MIB if used else 4 * MIB
    burst = max(0.0, math.sin(t * 0.9 + gpu.phase * 6))
    reading = GpuReading(
        utilization_gpu=round(100 * load),
        utilization_memory=round(55 * load),
        memory_used_bytes=min(used, gpu.memory_total_bytes),
        memory_total_bytes=gpu.memory_total_bytes,
        temperature_c=round(temperature),
        power_mw=round(power * 1000),
        power_limit_mw=round(limit * 1000),
        fan_percent=round(_clamp(30 + 0.9 * (temperature - 30), 30, 100)) if gpu.has_fan else None,
        clock_sm_mhz=sm_clock,
        clock_mem_mhz=2619,
        pstate=0 if busy else 8,
        clocks_event_reasons=reasons,
        pcie_rx_kbps=round((1.4e6 + 1.2e6 * burst) * load + 40),
        pcie_tx_kbps=round(0.2e6 * load + 20),
        ecc_enabled=True,
        ecc_corrected=0,
        ecc_uncorrected=0,
    )
    for name, value in gpu.overrides.items():
        setattr(reading, name, value)
    return reading
