"""The simulated lab behind SimulatedNvml: GPUs, their jobs and processes, and the values they show.

Values are pure functions of the clock (a training-like pattern: long steps at full load, eval
dips, checkpoint pauses; temperatures lag the load; power tracks its limit), so two readings at
the same time agree and nothing drifts over months of uptime. A scenario (JSON) can replace the
generated GPUs, e.g. to put hostile strings in user names and commands, and schedule faults: GPU
losses, nvmlInit failures, hung calls and XID errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import psutil
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
    real: bool = False  # a real pid of this machine: its user and command are read from /proc
    while_alive: bool = False  # a real pid (demo trainers): listed only while that process runs


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
    """A scheduled fault, `at_s` seconds after the simulation started (see events_from_scenario)."""

    at_s: float
    gpu: int | None  # None: the whole library (init_failure)
    kind: str  # lost | recovered | init_failure | hang | xid
    until_s: float | None = None  # init_failure: nvmlInit fails until then
    for_s: float | None = None  # hang: how long the call blocks
    code: int | None = None  # xid: the XID number

    @property
    def lost(self) -> bool:
        return self.kind == "lost"


EVENT_KINDS = ("lost", "recovered", "init_failure", "hang", "xid")
# The keys each kind takes besides at_s and event: a typo must never be silently ignored.
_EVENT_KEYS: dict[str, frozenset[str]] = {
    "lost": frozenset({"gpu"}),
    "recovered": frozenset({"gpu"}),
    "init_failure": frozenset({"until_s"}),
    "hang": frozenset({"gpu", "for_s"}),
    "xid": frozenset({"gpu", "code"}),
}


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
    "gpu_memory_bytes", "real", "while_alive"}]}]}` ("real": true reads user and command of that pid
    from /proc, as for a real GPU; "while_alive": true lists the process only while that pid runs).
    Optional per GPU: uuid, memory_total_bytes, power_limit_watts, fan,
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
                    real=p.get("real") is True,
                    while_alive=p.get("while_alive") is True,
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


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _event(k: int, e: Any, count: int) -> SimEvent:
    """One entry of a scenario's `events`; a ValueError names its index and what is wrong."""
    where = f"scenario events[{k}]"
    if not isinstance(e, dict):
        raise ValueError(f"{where} must be a mapping")
    kind = e.get("event")
    if kind not in EVENT_KINDS:
        raise ValueError(f"{where}: event must be one of {', '.join(EVENT_KINDS)}, not {kind!r}")
    unknown = set(e) - {"at_s", "event"} - _EVENT_KEYS[kind]
    if unknown:
        takes = ", ".join(["at_s", *sorted(_EVENT_KEYS[kind])])
        raise ValueError(f"{where} ({kind}): unknown keys {sorted(unknown)}; it takes {takes}")
    at_s = e.get("at_s")
    if not _number(at_s) or at_s < 0:
        raise ValueError(f"{where} ({kind}) needs at_s, seconds >= 0 since the backend started")
    gpu = e.get("gpu")
    if "gpu" in _EVENT_KEYS[kind] and (not isinstance(gpu, int) or isinstance(gpu, bool) or not 0 <= gpu < count):
        raise ValueError(f"{where} ({kind}) needs gpu, a GPU index < {count}, not {gpu!r}")
    until_s, for_s, code = e.get("until_s"), e.get("for_s"), e.get("code")
    if kind == "init_failure" and (not _number(until_s) or until_s <= at_s):
        raise ValueError(f"{where} (init_failure) needs until_s, seconds after at_s ({at_s:g}), not {until_s!r}")
    if kind == "hang" and (not _number(for_s) or for_s <= 0):
        raise ValueError(f"{where} (hang) needs for_s, the seconds the call blocks (> 0), not {for_s!r}")
    if kind == "xid" and (not isinstance(code, int) or isinstance(code, bool) or code <= 0):
        raise ValueError(f"{where} (xid) needs code, a positive XID number, not {code!r}")
    return SimEvent(
        float(at_s),
        gpu,
        kind,
        until_s=float(until_s) if kind == "init_failure" else None,
        for_s=float(for_s) if kind == "hang" else None,
        code=code if kind == "xid" else None,
    )


def events_from_scenario(scenario: dict[str, Any] | None, count: int) -> tuple[list[SimEvent], float | None]:
    """`"events"`: a list of faults, times in seconds since the backend started:
    `{"at_s": 30, "gpu": 1, "event": "lost"}` / `"recovered"`: the GPU stops / starts answering;
    `{"at_s": 0, "event": "init_failure", "until_s": 8}`: nvmlInit fails (driver not loaded) meanwhile;
    `{"at_s": 5, "gpu": 0, "event": "hang", "for_s": 6}`: the next call for that GPU blocks for_s;
    `{"at_s": 3, "gpu": 1, "event": "xid", "code": 79}`: an XID error through the event sets.
    An optional `"repeat_s"` replays them all forever (for a demo wall)."""
    if scenario is None:
        return [], None
    raw = scenario.get("events") or []
    if not isinstance(raw, list):
        raise ValueError("scenario events must be a list")
    events = [_event(k, e, count) for k, e in enumerate(raw)]
    repeat = scenario.get("repeat_s")
    if repeat is not None and (not _number(repeat) or repeat <= 0):
        raise ValueError("scenario repeat_s must be a positive number of seconds")
    return sorted(events, key=lambda e: e.at_s), float(repeat) if repeat is not None else None


def lost_at(events: list[SimEvent], index: int, elapsed: float) -> bool:
    lost = False
    for event in events:
        if event.at_s > elapsed:
            break
        if event.gpu == index and event.kind in ("lost", "recovered"):
            lost = event.lost
    return lost


def drop_exited(gpu: SimGpu) -> None:
    """Processes marked "while_alive" leave their GPU once their real pid has exited (or is a zombie)."""
    if any(p.while_alive for p in gpu.processes):
        gpu.processes = [p for p in gpu.processes if not p.while_alive or _running(p.pid)]


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def init_failing_at(events: list[SimEvent], elapsed: float) -> bool:
    return any(e.kind == "init_failure" and e.at_s <= elapsed < (e.until_s or 0.0) for e in events)


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
