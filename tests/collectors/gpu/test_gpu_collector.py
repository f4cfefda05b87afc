"""GpuCollector against the NVML test double: values, unsupported fields, lost GPUs, init failures,
crashes and recovery through CollectorThread.step(), processes and redaction, the simulated backend."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pynvml
import pytest

from collectors.base import CollectorThread
from collectors.gpu import build_gpu_collector
from collectors.gpu.collector import GpuCollector
from collectors.gpu.fields import NO_DRIVER, NO_GPU, decode_throttle_reasons, pstate_name
from collectors.gpu.nvml import NvmlBackend
from collectors.gpu.processes import ProcessLookup
from collectors.gpu.redact import Redactor
from collectors.gpu.sim_model import GIB, MIB
from collectors.gpu.sim_nvml import SimulatedNvml
from collectors.gpu.simulated import SimulatedBackend, open_simulated
from monitor.config import Config, ConfigError, parse_config
from monitor.model.samples import make_labels
from monitor.model.settings import CollectorContext
from monitor.model.store import Store

try:  # tests/ is on sys.path under pytest's default import mode; tests.* if it becomes a package
    from fake_nvml import CUDA_VERSION, DRIVER_VERSION, NVML_VERSION, FakeNvml
except ImportError:  # pragma: no cover
    from tests.fake_nvml import CUDA_VERSION, DRIVER_VERSION, NVML_VERSION, FakeNvml

HOST = "testhost"
RETRY_S = 42.0
T0 = 1_000_000.0
ALL_SERIES = [
    "gpu_utilization_percent", "gpu_memory_utilization_percent", "gpu_memory_used_bytes",
    "gpu_memory_total_bytes", "gpu_temperature_celsius", "gpu_power_watts", "gpu_power_limit_watts",
    "gpu_fan_percent", "gpu_clock_sm_mhz", "gpu_clock_memory_mhz", "gpu_pcie_rx_bytes_per_second",
    "gpu_pcie_tx_bytes_per_second", "gpu_ecc_errors_corrected_total", "gpu_ecc_errors_uncorrected_total",
]  # fmt: skip
GPU_KEYS = {
    "index", "uuid", "name", "status", "utilization_gpu_percent", "utilization_memory_percent",
    "memory_used_bytes", "memory_total_bytes", "temperature_celsius", "power_draw_watts", "power_limit_watts",
    "fan_percent", "clock_sm_mhz", "clock_memory_mhz", "pstate", "throttle_reasons",
    "pcie_rx_bytes_per_second", "pcie_tx_bytes_per_second", "ecc_errors_corrected", "ecc_errors_uncorrected",
    "processes", "lost_reason", "xid_errors",
}  # fmt: skip
DOC_KEYS = {
    "backend", "simulated", "state", "reason", "driver_version", "nvml_version", "cuda_driver_version",
    "gpus",
}  # fmt: skip


def make(count: int = 8, **options: Any) -> tuple[FakeNvml, Store, GpuCollector]:
    fake = FakeNvml(count)
    store = Store(HOST)
    options.setdefault("pcie_per_tick", 64)
    lookup = ProcessLookup(Redactor(), resolver=fake.process_info)
    options.setdefault("clock", lambda: T0)
    collector = GpuCollector(store, 1.0, NvmlBackend(fake), processes=lookup, retry_s=RETRY_S, **options)
    return fake, store, collector


def doc(store: Store) -> dict[str, Any]:
    found = store.state("gpu")
    assert found is not None, "no gpu state document"
    document = found[1]
    json.dumps(document, allow_nan=False)  # JSON-safe: no NaN/inf, only plain types
    return document


def context(config: Any, store: Store) -> CollectorContext:
    return CollectorContext(store, redaction_patterns=tuple(config.redaction.extra_patterns))


def latest(store: Store, name: str, gpu: int) -> tuple[float, float] | None:
    return store.latest((name, make_labels(host=HOST, gpu=gpu, uuid=f"GPU-fake-{gpu:04d}")))


def events(store: Store) -> list[tuple[str, str, str]]:
    return [(e.level, e.source, e.text) for e in store.events.read_after(0)]


# -- values ----------------------------------------------------------------------------------------


def test_eight_gpus_report_the_doubles_values() -> None:
    _, store, collector = make(8)
    collector.setup()
    collector.collect(T0)
    document = doc(store)
    assert set(document) == DOC_KEYS
    assert document["state"] == "ok" and document["reason"] is None
    assert (document["backend"], document["simulated"]) == ("nvml", False)
    assert document["driver_version"] == DRIVER_VERSION
    assert document["nvml_version"] == NVML_VERSION
    assert document["cuda_driver_version"] == f"{CUDA_VERSION // 1000}.{CUDA_VERSION % 1000 // 10}" == "12.4"
    assert len(document["gpus"]) == 8
    for i, gpu in enumerate(document["gpus"]):
        assert set(gpu) == GPU_KEYS
        assert gpu == {
            "index": i, "uuid": f"GPU-fake-{i:04d}", "name": f"Fake GPU {i}", "status": "ok",
            "utilization_gpu_percent": 10.0 + i, "utilization_memory_percent": 20.0 + i,
            "memory_used_bytes": (i + 1) * GIB, "memory_total_bytes": 80 * GIB,
            "temperature_celsius": 40.0 + i, "power_draw_watts": 100.0 + i, "power_limit_watts": 700.0,
            "fan_percent": 30.0 + i, "clock_sm_mhz": 1400 + i, "clock_memory_mhz": 2600 + i, "pstate": "P0",
            "throttle_reasons": [], "pcie_rx_bytes_per_second": 1024.0 * 1000 * (i + 1),
            "pcie_tx_bytes_per_second": 1024.0 * 500 * (i + 1), "ecc_errors_corrected": i,
            "ecc_errors_uncorrected": 0, "processes": [], "lost_reason": None, "xid_errors": [],
        }  # fmt: skip
        expected = {
            "gpu_utilization_percent": 10 + i, "gpu_memory_utilization_percent": 20 + i,
            "gpu_memory_used_bytes": (i + 1) * GIB, "gpu_memory_total_bytes": 80 * GIB,
            "gpu_temperature_celsius": 40 + i, "gpu_power_watts": 100 + i, "gpu_power_limit_watts": 700,
            "gpu_fan_percent": 30 + i, "gpu_clock_sm_mhz": 1400 + i, "gpu_clock_memory_mhz": 2600 + i,
            "gpu_pcie_rx_bytes_per_second": 1024 * 1000 * (i + 1),
            "gpu_pcie_tx_bytes_per_second": 1024 * 500 * (i + 1),
            "gpu_ecc_errors_corrected_total": i, "gpu_ecc_errors_uncorrected_total": 0,
        }  # fmt: skip
        assert set(expected) == set(ALL_SERIES)
        for name, value in expected.items():
            assert latest(store, name, i) == (T0, float(value)), name
    assert len(store.keys("gpu_")) == 8 * len(ALL_SERIES)


def test_values_follow_the_double_tick_by_tick() -> None:
    fake, store, collector = make(2)
    collector.setup()
    collector.collect(T0)
    fake.readings[1].utilization_gpu = 93
    fake.readings[1].memory_used_bytes = 7 * GIB
    collector.collect(T0 + 1)
    gpu = doc(store)["gpus"][1]
    assert (gpu["utilization_gpu_percent"], gpu["memory_used_bytes"]) == (93.0, 7 * GIB)
    assert latest(store, "gpu_utilization_percent", 1) == (T0 + 1, 93.0)
    chunk = store.read_after(
        ("gpu_utilization_percent", make_labels(host=HOST, gpu=1, uuid="GPU-fake-0001")), 0
    )
    assert chunk is not None and chunk.values[:, 0].tolist() == [11.0, 93.0]


def test_throttle_reasons_and_pstate_are_decoded() -> None:
    fake, store, collector = make(2)
    fake.readings[0].clocks_event_reasons = (
        pynvml.nvmlClocksEventReasonSwPowerCap | pynvml.nvmlClocksEventReasonHwThermalSlowdown
    )
    fake.readings[0].pstate = 8
    fake.readings[1].pstate = pynvml.NVML_PSTATE_UNKNOWN
    collector.setup()
    collector.collect(T0)
    gpus = doc(store)["gpus"]
    assert gpus[0]["throttle_reasons"] == ["sw_power_cap", "hw_thermal_slowdown"]
    assert (gpus[0]["pstate"], gpus[1]["pstate"]) == ("P8", None)


def test_every_throttle_bit_has_its_name() -> None:
    assert decode_throttle_reasons(0x1FF) == [
        "gpu_idle", "applications_clocks_setting", "sw_power_cap", "hw_slowdown", "sync_boost",
        "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown", "display_clock_setting",
    ]  # fmt: skip
    assert decode_throttle_reasons(pynvml.nvmlClocksThrottleReasonGpuIdle) == ["gpu_idle"]
    assert decode_throttle_reasons(0) == []
    assert decode_throttle_reasons(None) is None
    assert [pstate_name(0), pstate_name(15), pstate_name(16), pstate_name(None)] == ["P0", "P15", None, None]


def test_old_driver_falls_back_to_the_older_function_names() -> None:
    fake, store, collector = make(1)
    for newer in ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetTemperatureV"):
        fake.crash[newer] = pynvml.NVMLError(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
    fake.readings[0].clocks_event_reasons = pynvml.nvmlClocksThrottleReasonHwSlowdown
    collector.setup()
    for t in range(3):
        collector.collect(T0 + t)
    gpu = doc(store)["gpus"][0]
    assert (gpu["throttle_reasons"], gpu["temperature_celsius"]) == (["hw_slowdown"], 40.0)
    # remembered, not retried each tick
    assert (
        fake.calls["nvmlDeviceGetCurrentClocksEventReasons"] == fake.calls["nvmlDeviceGetTemperatureV"] == 1
    )
    assert fake.calls["nvmlDeviceGetTemperature"] == 3


def test_newer_function_names_are_preferred() -> None:
    fake, _, collector = make(1)
    collector.setup()
    collector.collect(T0)
    assert (
        fake.calls["nvmlDeviceGetTemperatureV"] == fake.calls["nvmlDeviceGetCurrentClocksEventReasons"] == 1
    )
    assert (
        fake.calls["nvmlDeviceGetTemperature"] == fake.calls["nvmlDeviceGetCurrentClocksThrottleReasons"] == 0
    )


def test_non_finite_values_become_none_and_no_sample() -> None:
    fake, store, collector = make(2)
    fake.readings[0].power_mw = float("nan")
    fake.readings[0].temperature_c = float("inf")  # type: ignore[assignment]
    collector.setup()
    collector.collect(T0)
    gpu = doc(store)["gpus"][0]
    assert (gpu["power_draw_watts"], gpu["temperature_celsius"]) == (None, None)
    assert latest(store, "gpu_power_watts", 0) is None
    assert latest(store, "gpu_power_watts", 1) == (T0, 101.0)


# -- unsupported fields and call budget ------------------------------------------------------------


def test_unsupported_fields_are_none_and_not_asked_every_tick() -> None:
    fake, store, collector = make(8)
    unsupported = [
        "nvmlDeviceGetFanSpeed", "nvmlDeviceGetPcieThroughput", "nvmlDeviceGetEccMode",
        "nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons",
    ]  # fmt: skip
    for fn in unsupported:
        fake.set_unsupported(fn)
    fake.set_unsupported("nvmlDeviceGetTemperatureV", index=2)
    fake.set_unsupported("nvmlDeviceGetTemperature", index=2)
    fake.set_unsupported("nvmlDeviceGetProcessUtilization", index=0)
    fake.add_process(0, 501, "alice", "python a.py", sm_percent=40)
    collector.setup()
    collector.collect(T0)
    gpus = doc(store)["gpus"]
    for gpu in gpus:
        assert gpu["status"] == "ok"
        assert gpu["fan_percent"] is None and gpu["throttle_reasons"] is None
        assert gpu["pcie_rx_bytes_per_second"] is None and gpu["pcie_tx_bytes_per_second"] is None
        assert gpu["ecc_errors_corrected"] is None and gpu["ecc_errors_uncorrected"] is None
        assert gpu["utilization_gpu_percent"] == 10.0 + gpu["index"]
    assert [g["temperature_celsius"] for g in gpus] == [40.0, 41.0, None, 43.0, 44.0, 45.0, 46.0, 47.0]
    assert gpus[0]["processes"][0]["sm_percent"] is None  # process listed, SM % unknown
    assert fake.calls["nvmlDeviceGetTotalEccErrors"] == 0  # ECC mode unknown: counters never asked
    for name in ("gpu_fan_percent", "gpu_pcie", "gpu_ecc"):
        assert store.keys(name) == []
    assert latest(store, "gpu_temperature_celsius", 2) is None
    fan_calls = fake.calls["nvmlDeviceGetFanSpeed"]
    assert fan_calls == 8
    collector.collect(T0 + 1)
    assert fake.calls["nvmlDeviceGetFanSpeed"] == fan_calls
    collector.collect(T0 + 31)  # the periodic refresh probes once more, in case it became readable
    assert fake.calls["nvmlDeviceGetFanSpeed"] == 2 * fan_calls


def test_identity_and_limits_are_cached_between_refreshes() -> None:
    fake, store, collector = make(8)
    collector.setup()
    for t in range(5):
        collector.collect(T0 + t)
    static = (
        "nvmlDeviceGetName",
        "nvmlDeviceGetUUID",
        "nvmlDeviceGetEnforcedPowerLimit",
        "nvmlDeviceGetEccMode",
    )
    assert [fake.calls[fn] for fn in static] == [8, 8, 8, 8]
    assert fake.calls["nvmlDeviceGetUtilizationRates"] == 40
    assert fake.calls["nvmlDeviceGetTotalEccErrors"] == 2 * 8  # every 10 s, not every tick
    assert fake.calls["nvmlDeviceGetHandleByIndex"] == 8
    fake.readings[0].power_limit_mw = 450_000
    collector.collect(T0 + 31)
    assert [fake.calls[fn] for fn in static] == [16, 16, 16, 16]
    assert doc(store)["gpus"][0]["power_limit_watts"] == 450.0


def test_pcie_sampling_is_rationed() -> None:
    fake, store, collector = make(4, pcie_per_tick=1, pcie_interval_s=5.0)
    collector.setup()
    collector.collect(T0)
    assert fake.calls["nvmlDeviceGetPcieThroughput"] == 2  # rx + tx of one GPU: 2 × 20 ms
    assert [g["pcie_rx_bytes_per_second"] is not None for g in doc(store)["gpus"]] == [
        True,
        False,
        False,
        False,
    ]
    for t in range(1, 4):
        collector.collect(T0 + t)
    assert all(g["pcie_rx_bytes_per_second"] is not None for g in doc(store)["gpus"])
    assert fake.calls["nvmlDeviceGetPcieThroughput"] == 8
    collector.collect(T0 + 4)  # nothing due yet: GPU 0 was read 4 s ago
    assert fake.calls["nvmlDeviceGetPcieThroughput"] == 8
    collector.collect(T0 + 5)
    assert fake.calls["nvmlDeviceGetPcieThroughput"] == 10
    assert latest(store, "gpu_pcie_rx_bytes_per_second", 0) == (T0 + 5, 1024_000.0)


def test_clocks_are_read_every_clock_refresh_s_and_kept_between() -> None:
    fake, store, collector = make(2, clock_refresh_s=5.0)
    collector.setup()
    collector.collect(T0)
    assert fake.calls["nvmlDeviceGetClockInfo"] == 4  # SM + memory of 2 GPUs
    fake.readings[0].clock_sm_mhz = 1980
    for t in range(1, 5):
        collector.collect(T0 + t)
    assert fake.calls["nvmlDeviceGetClockInfo"] == 4  # not shown on the wall: not worth 0.4 ms a call each tick
    assert doc(store)["gpus"][0]["clock_sm_mhz"] == 1400  # the last reading stays in the document
    assert latest(store, "gpu_clock_sm_mhz", 0) == (T0, 1400.0)
    collector.collect(T0 + 5)
    assert fake.calls["nvmlDeviceGetClockInfo"] == 8
    assert doc(store)["gpus"][0]["clock_sm_mhz"] == 1980
    assert latest(store, "gpu_clock_sm_mhz", 0) == (T0 + 5, 1980.0)


# -- a GPU lost and found --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"),
    [(pynvml.NVML_ERROR_GPU_IS_LOST, "GPU is lost"), (pynvml.NVML_ERROR_UNKNOWN, "Unknown Error")],
)
def test_lost_gpu_is_marked_alone_and_recovers(code: int, reason: str) -> None:
    fake, store, collector = make(8)
    thread = CollectorThread(collector)
    assert thread.step() is None
    before = latest(store, "gpu_utilization_percent", 3)
    assert before is not None

    fake.lose(3, code)
    fake.readings[0].utilization_gpu = 77
    assert thread.step() is None  # one lost GPU is not a collector failure
    gpus = doc(store)["gpus"]
    lost = gpus[3]
    assert lost["status"] == "lost" and lost["lost_reason"] == reason
    assert (lost["index"], lost["uuid"], lost["name"]) == (3, "GPU-fake-0003", "Fake GPU 3")
    assert all(
        lost[k] is None
        for k in GPU_KEYS - {"index", "uuid", "name", "status", "processes", "lost_reason", "xid_errors"}
    )
    assert lost["processes"] == [] and lost["xid_errors"] == []  # a lost GPU keeps its XID history
    assert [g["status"] for g in gpus] == ["ok", "ok", "ok", "lost", "ok", "ok", "ok", "ok"]
    assert gpus[0]["utilization_gpu_percent"] == 77.0
    assert latest(store, "gpu_utilization_percent", 0)[1] == 77.0  # type: ignore[index]
    assert latest(store, "gpu_utilization_percent", 3) == before  # no new samples from the lost GPU
    assert collector.health.detail["degraded"] == f"GPU 3 lost: {reason}"
    snapshot = collector.health.snapshot()
    assert snapshot["state"] == "ok" and snapshot["degraded"] == f"GPU 3 lost: {reason}"

    assert thread.step() is None
    lost_events = [e for e in events(store) if "lost" in e[2]]
    assert lost_events == [("error", "gpu", f"GPU 3 lost: {reason}")]  # logged once, on the transition

    fake.restore(3)
    handles = fake.calls["nvmlDeviceGetHandleByIndex"]
    assert thread.step() is None
    assert fake.calls["nvmlDeviceGetHandleByIndex"] == handles + 1  # the handle is fetched afresh
    gpu = doc(store)["gpus"][3]
    assert gpu["status"] == "ok" and gpu["lost_reason"] is None and gpu["utilization_gpu_percent"] == 13.0
    assert events(store)[-1] == ("info", "gpu", "GPU 3 recovered")
    assert "degraded" not in collector.health.detail
    assert "degraded" not in collector.health.snapshot()
    assert latest(store, "gpu_utilization_percent", 3)[0] > before[0]  # type: ignore[index]


def test_two_lost_gpus_are_both_named_in_degraded() -> None:
    fake, _, collector = make(4)
    collector.setup()
    fake.lose(1)
    fake.lose(2, pynvml.NVML_ERROR_UNKNOWN)
    collector.collect(T0)
    assert collector.health.detail["degraded"] == "GPU 1 lost: GPU is lost; GPU 2 lost: Unknown Error"
    fake.restore(1)
    collector.collect(T0 + 1)
    assert collector.health.detail["degraded"] == "GPU 2 lost: Unknown Error"


def test_gpu_lost_at_startup_is_reported_and_found_later() -> None:
    fake, store, collector = make(3)
    fake.lose(1)
    thread = CollectorThread(collector)
    assert thread.step() is None
    gpu = doc(store)["gpus"][1]
    assert (gpu["index"], gpu["status"], gpu["lost_reason"]) == (1, "lost", "GPU is lost")
    assert doc(store)["gpus"][0]["status"] == "ok"
    fake.restore(1)
    assert thread.step() is None
    gpu = doc(store)["gpus"][1]
    assert (gpu["name"], gpu["uuid"], gpu["status"]) == ("Fake GPU 1", "GPU-fake-0001", "ok")
    assert ("info", "gpu", "GPU 1 recovered") in events(store)


# -- NVML unavailable ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, NO_DRIVER),
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, NO_DRIVER),
        (pynvml.NVML_ERROR_NO_PERMISSION, "no permission to use the NVIDIA driver"),
        (pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH,
         "NVIDIA driver and library versions differ (reload the driver or reboot)"),
        (pynvml.NVML_ERROR_UNKNOWN, "NVML initialisation failed: Unknown Error"),
    ],
)  # fmt: skip
def test_init_failure_is_unavailable_then_recovers(code: int, reason: str) -> None:
    fake, store, collector = make(8)
    fake.init_error = code
    thread = CollectorThread(collector)
    assert thread.step() == RETRY_S
    health = collector.health.snapshot()
    assert (health["state"], health["error"], health["error_count"]) == ("unavailable", reason, 0)
    document = doc(store)
    assert (document["state"], document["reason"], document["gpus"]) == ("unavailable", reason, [])
    assert document["backend"] == "nvml"
    assert store.keys("gpu_") == []

    assert thread.step() == RETRY_S  # retried: setup() runs again
    assert fake.calls["nvmlInit"] == 2
    assert [e for e in events(store) if e[0] == "warning"] == [
        ("warning", "gpu", f"gpu unavailable: {reason}")
    ]

    fake.init_error = None  # the driver was loaded: no restart needed
    assert thread.step() is None
    health = collector.health.snapshot()
    assert (health["state"], health["error"]) == ("ok", None)
    document = doc(store)
    assert document["state"] == "ok" and len(document["gpus"]) == 8
    assert document["driver_version"] == DRIVER_VERSION
    assert events(store)[-1] == ("info", "gpu", "gpu collector recovered")
    assert fake.initialized == 1


def test_no_gpu_is_unavailable_and_releases_nvml() -> None:
    fake, store, collector = make(0)
    thread = CollectorThread(collector)
    assert thread.step() == RETRY_S
    assert collector.health.snapshot()["error"] == NO_GPU == "no NVIDIA GPU found"
    assert doc(store)["reason"] == NO_GPU
    assert fake.initialized == 0


def test_driver_unloaded_mid_run_is_unavailable_then_recovers() -> None:
    fake, store, collector = make(4)
    thread = CollectorThread(collector)
    assert thread.step() is None
    fake.library_error = pynvml.NVML_ERROR_UNINITIALIZED
    assert thread.step() == RETRY_S
    document = doc(store)
    assert document["state"] == "unavailable" and document["gpus"] == []
    assert "Uninitialized" in document["reason"]
    assert collector.health.snapshot()["state"] == "unavailable"
    assert not [e for e in events(store) if "GPU 0 lost" in e[2]]  # not blamed on a single GPU
    fake.library_error = None
    assert thread.step() is None
    assert doc(store)["state"] == "ok"
    assert fake.calls["nvmlShutdown"] >= 1  # released what it could before initialising again


# -- crashes ---------------------------------------------------------------------------------------


def test_crash_is_recorded_and_recovers_through_the_thread() -> None:
    fake, store, collector = make(4)
    thread = CollectorThread(collector)
    assert thread.step() is None
    fake.crash["nvmlDeviceGetUtilizationRates"] = RuntimeError("boom")
    first = thread.step()
    health = collector.health.snapshot()
    assert (health["state"], health["error"], health["error_count"]) == ("error", "RuntimeError: boom", 1)
    assert events(store)[-1] == ("error", "gpu", "gpu collector failed: RuntimeError: boom")
    second = thread.step()
    assert first is not None and second is not None and second > first  # backs off
    assert collector.health.snapshot()["error_count"] == 2
    assert collector.health.consecutive_errors == 2
    del fake.crash["nvmlDeviceGetUtilizationRates"]
    assert thread.step() is None
    health = collector.health.snapshot()
    assert (health["state"], health["error"], health["error_count"]) == ("ok", None, 2)
    assert events(store)[-1] == ("info", "gpu", "gpu collector recovered")
    assert fake.initialized == 1  # each re-setup shut NVML down before initialising it again
    collector.close()
    assert fake.initialized == 0


# -- processes -------------------------------------------------------------------------------------


def test_processes_are_listed_with_users_and_redacted_commands() -> None:
    fake, store, collector = make(2)
    fake.add_process(0, 501, "alice", "python train.py --token supersecret --tokenizer bert-base",
                     memory=2 * GIB, sm_percent=55)  # fmt: skip
    fake.add_process(0, 502, "bob", "/usr/lib/xorg/Xorg :0", memory=100 * MIB, kind="graphics")
    fake.add_process(0, 503, "carol", "python both.py HF_TOKEN=abc", memory=None, sm_percent=3)
    fake.add_process(0, 503, "carol", "python both.py HF_TOKEN=abc", memory=None, kind="graphics")
    collector.setup()
    collector.collect(T0)
    document = doc(store)
    assert document["gpus"][0]["processes"] == [
        {"pid": 501, "user": "alice", "command": "python train.py --token *** --tokenizer bert-base",
         "gpu_memory_bytes": 2 * GIB, "sm_percent": 55.0, "type": "compute"},
        {"pid": 502, "user": "bob", "command": "/usr/lib/xorg/Xorg :0", "gpu_memory_bytes": 100 * MIB,
         "sm_percent": None, "type": "graphics"},
        {"pid": 503, "user": "carol", "command": "python both.py HF_TOKEN=***", "gpu_memory_bytes": None,
         "sm_percent": 3.0, "type": "compute"},
    ]  # fmt: skip
    assert document["gpus"][1]["processes"] == []
    assert "supersecret" not in json.dumps(document)
    assert fake.calls["nvmlDeviceGetProcessUtilization"] == 1  # only asked where processes run


def test_unknown_pid_without_resolver_shows_unknown() -> None:
    fake = FakeNvml(1)
    fake.add_process(0, 2**31 - 2, "ghost", "never shown")
    store = Store(HOST)
    collector = GpuCollector(store, 1.0, NvmlBackend(fake), retry_s=RETRY_S)  # psutil lookup: no such process
    collector.setup()
    collector.collect(T0)
    process = doc(store)["gpus"][0]["processes"][0]
    assert (process["pid"], process["user"], process["command"]) == (2**31 - 2, None, None)


# -- building and the simulated backend ------------------------------------------------------------


def test_build_returns_none_when_disabled() -> None:
    config = Config.model_validate({"gpu": {"enabled": False}})
    assert build_gpu_collector(config.gpu, CollectorContext(Store(HOST))) is None


def test_build_uses_real_pynvml_for_nvml_backend() -> None:
    collector = build_gpu_collector(Config().gpu, CollectorContext(Store(HOST)))
    assert isinstance(collector, GpuCollector) and isinstance(collector.backend, NvmlBackend)
    assert collector.backend.nvml is pynvml
    assert (collector.name, collector.retry_s) == ("gpu", 60.0)


def test_simulated_backend_reports_itself_and_redacts() -> None:
    config = Config.model_validate({"gpu": {"backend": "simulated", "simulated_count": 6, "nvml_retry_s": 9}})
    store = Store(HOST)
    collector = build_gpu_collector(config.gpu, context(config, store))
    assert isinstance(collector, GpuCollector)
    assert CollectorThread(collector).step() is None
    document = doc(store)
    assert (document["backend"], document["simulated"], document["state"]) == ("simulated", True, "ok")
    assert len(document["gpus"]) == 6
    text = json.dumps(document)
    for secret in ("hf_SiMu", "0123456789abcdef0123456789abcdef01234567", "sk-simulated", "hunter2"):
        assert secret not in text
    commands = [p["command"] for g in document["gpus"] for p in g["processes"]]
    assert commands and all("***" in c for c in commands if "--" in c and "ipykernel" not in c)
    users = {p["user"] for g in document["gpus"] for p in g["processes"]}
    assert {"alice", "bob", "carol", "dave"} <= users
    busy = [g for g in document["gpus"] if g["processes"]]
    idle = document["gpus"][-1]
    assert busy and idle["processes"] == [] and idle["utilization_gpu_percent"] == 0.0
    assert "gpu_idle" in idle["throttle_reasons"]


def test_simulated_scenario_passes_hostile_strings_through_unchanged() -> None:
    xss_user = "<script>alert('u')</script>"
    xss_command = 'python "><img src=x onerror=alert(1)> --password hunter2 --run-secret zz'
    scenario = {"gpus": [
        {"name": "<b>GPU</b>", "processes": [{"pid": 7, "user": xss_user, "command": xss_command,
                                              "gpu_memory_bytes": GIB}]},
        {"name": "Idle", "processes": []},
    ]}  # fmt: skip
    config = Config.model_validate({"gpu": {"backend": "simulated"}, "redaction": {
        "extra_patterns": [r"--run-secret\s+(\S+)"]}})  # fmt: skip
    store = Store(HOST)
    collector = build_gpu_collector(config.gpu, context(config, store), open_simulated(config.gpu, scenario))
    assert collector is not None
    assert CollectorThread(collector).step() is None
    gpus = doc(store)["gpus"]
    assert len(gpus) == 2 and gpus[0]["name"] == "<b>GPU</b>"
    process = gpus[0]["processes"][0]
    assert process["user"] == xss_user  # escaping is the view's job; the data stays exact
    assert process["command"] == 'python "><img src=x onerror=alert(1)> --password *** --run-secret ***'
    assert process["gpu_memory_bytes"] == GIB


def test_simulated_values_are_plausible_and_smooth() -> None:
    clock = [T0]
    nvml = SimulatedNvml(4, clock=lambda: clock[0])
    store = Store(HOST)
    lookup = ProcessLookup(resolver=nvml.process_info)
    collector = GpuCollector(store, 1.0, SimulatedBackend(nvml), processes=lookup, clock=lambda: clock[0])
    collector.setup()
    previous: list[dict[str, Any]] | None = None
    busy_utils: list[float] = []
    for step in range(400):  # two train/eval/checkpoint cycles, one reading per second
        clock[0] = T0 + step
        collector.collect(clock[0])
        gpus = doc(store)["gpus"]
        for gpu in gpus:
            assert 0 <= gpu["utilization_gpu_percent"] <= 100
            assert 0 < gpu["memory_used_bytes"] <= gpu["memory_total_bytes"]
            assert 25 <= gpu["temperature_celsius"] <= 85
            assert 0 < gpu["power_draw_watts"] <= gpu["power_limit_watts"]
            assert gpu["pstate"] in ("P0", "P8")
        busy_utils.append(gpus[0]["utilization_gpu_percent"])
        if previous is not None:
            for now_gpu, before in zip(gpus, previous, strict=True):
                assert abs(now_gpu["temperature_celsius"] - before["temperature_celsius"]) <= 2
        previous = gpus
    assert max(busy_utils) >= 90 and min(busy_utils) <= 20  # trains hard, pauses for checkpoints
    assert sum(u >= 90 for u in busy_utils) > len(busy_utils) / 2
    assert doc(store)["gpus"][3]["utilization_gpu_percent"] == 0.0


def test_simulated_nvml_behaves_like_the_library() -> None:
    nvml = SimulatedNvml(2)
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        nvml.nvmlDeviceGetCount()
    nvml.nvmlInit()
    assert nvml.nvmlDeviceGetCount() == 2
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        nvml.nvmlDeviceGetHandleByIndex(2)
    with pytest.raises(pynvml.NVMLError_NotSupported):
        nvml.nvmlDeviceGetFanSpeed(nvml.nvmlDeviceGetHandleByIndex(0))
    nvml.nvmlShutdown()
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        nvml.nvmlShutdown()


def test_scenario_is_validated() -> None:
    with pytest.raises(ValueError, match="gpus"):
        SimulatedNvml(scenario={"gpus": []})
    with pytest.raises(ValueError, match="pid"):
        SimulatedNvml(scenario={"gpus": [{"processes": [{"pid": "x"}]}]})


def test_real_library_without_driver_is_unavailable_with_reason() -> None:
    store = Store(HOST)
    collector = GpuCollector(store, 1.0, NvmlBackend(), retry_s=RETRY_S)
    thread = CollectorThread(collector)
    delay = thread.step()
    collector.close()
    document = doc(store)
    if document["state"] == "ok":  # a machine with a driver: covered by test_gpu_real.py
        assert delay is None
        return
    assert delay == RETRY_S
    assert document["reason"] in (NO_DRIVER, NO_GPU)
    assert collector.health.snapshot()["state"] == "unavailable"


def test_scenario_file_from_config_with_pinned_readings(tmp_path: Path) -> None:
    scenario = {
        "gpus": [
            {"name": "Hot", "readings": {"temperature_c": 91, "utilization_gpu": 100, "fan_percent": None}},
            {"name": "Cool", "fan": True, "processes": [{"pid": 5, "user": "u", "command": "c"}]},
        ]
    }
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario))
    config = Config.model_validate({"gpu": {"backend": "simulated", "simulated_scenario": str(path)}})
    store = Store(HOST)
    collector = build_gpu_collector(config.gpu, context(config, store))
    assert collector is not None and CollectorThread(collector).step() is None
    hot, cool = doc(store)["gpus"]
    assert (hot["name"], hot["temperature_celsius"], hot["utilization_gpu_percent"]) == ("Hot", 91.0, 100.0)
    assert hot["fan_percent"] is None  # null in the scenario = "not supported"
    assert cool["fan_percent"] is not None and cool["processes"][0]["gpu_memory_bytes"] == GIB


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot read"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"gpus": [{"readings": {"volts": 1}}]}', "unknown fields"),
        ('{"gpus": [{}], "events": [{"at_s": 1, "gpu": 4, "event": "lost"}]}', r"events\[0\]"),
    ],
)
def test_unusable_scenario_file_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(content)
    # Checked when the config is loaded, so --check-config and start-up both name the key.
    with pytest.raises(ConfigError) as info:
        parse_config({"gpu": {"backend": "simulated", "simulated_scenario": str(path)}})
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("gpu.simulated_scenario: ")
    assert re.search(message, info.value.problems[0])


def test_scenario_events_lose_and_recover_a_gpu() -> None:
    clock = [T0]
    scenario = {
        "gpus": [{"name": "A"}, {"name": "B"}],
        "events": [{"at_s": 10, "gpu": 1, "event": "lost"}, {"at_s": 20, "gpu": 1, "event": "recovered"}],
        "repeat_s": 30,
    }
    nvml = SimulatedNvml(scenario=scenario, clock=lambda: clock[0])
    store = Store(HOST)
    collector = GpuCollector(store, 1.0, SimulatedBackend(nvml), clock=lambda: clock[0])
    statuses = []
    for elapsed in (0, 12, 25, 41, 55):
        clock[0] = T0 + elapsed
        collector.collect(clock[0])
        statuses.append(doc(store)["gpus"][1]["status"])
    assert statuses == ["ok", "lost", "ok", "lost", "ok"]
    assert [e[2] for e in events(store)] == ["GPU 1 lost: GPU is lost", "GPU 1 recovered"] * 2
