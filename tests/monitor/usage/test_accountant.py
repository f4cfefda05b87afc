"""The usage accounting against a hand-computed hour (tests/data/usage_scenario.json, read like
gpu.simulated_scenario): the real GPU collector on the simulated backend and the accountant, both
driven at controlled times (a reading every 5 s, so max_hold_s is 15 s), with a real Store.

    GPU 0  alice 3 GiB + bob 1 GiB (3:1), 80 % busy, 400 W   alice's process is joined to run r-alice
    GPU 1  carol 8 GiB, 0 % (idle-holding), 70 W
    GPU 2  dave's pid 1201, 50 %, 300 W; at 20:00 the pid belongs to erin (reused); the join still
           says dave's run until 21:00, then r-erin
    GPU 3  frank, 100 %, 500 W; lost at 30:00 (scenario event)
    all    the GPU collector stops from 40:00 (last reading) to 45:00 (next reading)

Every GPU that answers is held from 0:00 to 60:00 except the gap: 2400 s + 15 s (the last
reading's hold, capped) + 900 s = 3315 s.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from collectors.gpu.collector import GpuCollector
from collectors.gpu.processes import ProcessLookup
from collectors.gpu.sim_nvml import SimulatedNvml
from collectors.gpu.simulated import SimulatedBackend, load_scenario
from monitor.model.store import Store
from monitor.model.usage import UsageRecord
from monitor.usage.accountant import UsageAccountant
from monitor.usage.report import usage_report

SCENARIO = Path(__file__).resolve().parents[2] / "data" / "usage_scenario.json"
T0 = 1_800_000_000.0  # a whole hour (UTC)
STEP = 5.0
HELD = 2400 + 15 + 900  # seconds each answering GPU is held (see the docstring)
GAP = (T0 + 2400, T0 + 2700)  # the GPU collector is stopped strictly between these


class Lab:
    def __init__(self) -> None:
        self.now = T0
        self.store = Store("lab-host")
        self.nvml = SimulatedNvml(scenario=load_scenario(SCENARIO), clock=lambda: self.now)
        self.gpu = GpuCollector(self.store, STEP, SimulatedBackend(self.nvml),
                                processes=ProcessLookup(None, self.nvml.process_info), clock=lambda: self.now)
        self.accountant = UsageAccountant(self.store, STEP, idle_util_percent=5.0, max_hold_s=3 * STEP,
                                          clock=lambda: self.now)

    def join(self, by_pid: dict[int, dict[str, str | None]]) -> None:
        self.store.set_state("gpu_runs", {"by_pid": by_pid, "by_run": {}}, self.now)

    def tick(self, t: float, gpu: bool = True) -> None:
        self.now = t
        if gpu:
            self.gpu.collect(t)
        self.accountant.collect(t)

    def run_scenario_hour(self) -> None:
        self.join({1001: {"run_id": "r-alice", "user": "alice"}, 1201: {"run_id": "r-dave", "user": "dave"}})
        for k in range(721):
            t = T0 + STEP * k
            if t == T0 + 1200:  # dave's process ended; erin's new process got the same pid
                self.nvml.gpus[2].processes[0].user = "erin"
            if t == T0 + 1260:  # the join has read the new process
                self.join({1001: {"run_id": "r-alice", "user": "alice"}, 1201: {"run_id": "r-erin", "user": "erin"}})
            self.tick(t, gpu=not GAP[0] < t < GAP[1])


def totals(records: list[UsageRecord]) -> dict[tuple[str, str], dict[str, float]]:
    found: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in records:
        for name in ("held_s", "gpu_s", "idle_s", "busy_s", "energy_j"):
            found[(r.user, r.run)][name] += getattr(r, name)
    return {k: dict(v) for k, v in found.items()}


def expect(held: float, share: float, idle: bool, util: float, watts: float) -> dict[str, float]:
    gpu_s = held * share
    return {"held_s": held, "gpu_s": gpu_s, "idle_s": gpu_s if idle else 0.0, "busy_s": gpu_s * util,
            "energy_j": gpu_s * watts}


@pytest.fixture(scope="module")
def lab() -> Lab:
    lab = Lab()
    lab.run_scenario_hour()
    return lab


def test_the_hour_matches_the_hand_computed_totals_to_the_second(lab: Lab) -> None:
    records = lab.store.usage.records(T0, T0 + 3600)
    expected = {
        ("alice", "r-alice"): expect(HELD, 0.75, False, 0.8, 400),  # 2486.25 GPU-s, 1989 busy, 994,500 J
        ("bob", ""): expect(HELD, 0.25, False, 0.8, 400),  # 828.75 GPU-s, 663 busy, 331,500 J
        ("carol", ""): expect(HELD, 1.0, True, 0.0, 70),  # 3315 GPU-s, all of it idle, 232,050 J
        ("dave", "r-dave"): expect(1200, 1.0, False, 0.5, 300),  # until the reading that shows erin
        ("erin", ""): expect(60, 1.0, False, 0.5, 300),  # never dave's run: the join was about dave
        ("erin", "r-erin"): expect(HELD - 1260, 1.0, False, 0.5, 300),
        ("frank", ""): expect(1800, 1.0, False, 1.0, 500),  # lost at 30:00: nothing after
    }
    found = totals(records)
    assert found.keys() == expected.keys()
    for key, values in expected.items():
        assert found[key] == pytest.approx(values, abs=1e-6), key
    assert found[("alice", "r-alice")]["gpu_s"] == pytest.approx(2486.25)
    assert found[("carol", "")]["energy_j"] == pytest.approx(232_050)


def test_one_record_per_minute_gpu_user_and_run_and_none_while_the_collector_was_stopped(lab: Lab) -> None:
    records = lab.store.usage.records(T0, T0 + 3600)
    assert all(r.span_s == 60 and r.start % 60 == 0 and r.host == "lab-host" for r in records)
    keys = [(r.start, r.gpu, r.user, r.run) for r in records]
    assert len(keys) == len(set(keys))
    minutes = {r.start for r in records}
    assert minutes == {T0 + 60 * m for m in range(60) if not 41 <= m <= 44}
    at_40 = [r for r in records if r.start == T0 + 2400]
    assert {r.held_s for r in at_40} == {15.0}  # the last reading before the stop holds max_hold_s
    gpus = {r.gpu for r in records}
    assert gpus == {"0", "1", "2", "3"}
    assert max(r.start for r in records if r.gpu == "3") == T0 + 1740  # lost at 30:00
    assert {r.uuid for r in records if r.gpu == "0"} == {lab.nvml.gpus[0].uuid}


def test_the_report_groups_the_same_records_by_user_run_and_gpu(lab: Lab) -> None:
    by_user = usage_report(lab.store.usage, "user", T0, T0 + 3600, "hour")
    rows = {r["key"]: r for r in by_user["rows"]}
    assert [r["key"] for r in by_user["rows"]] == ["carol", "alice", "erin", "frank", "dave", "bob"]
    assert rows["carol"]["idle_gpu_hours"] == pytest.approx(HELD / 3600, abs=1e-6)
    assert rows["erin"]["gpu_hours"] == pytest.approx((HELD - 1200) / 3600, abs=1e-6)
    assert rows["alice"]["energy_kwh"] == pytest.approx(994_500 / 3.6e6, abs=1e-6)
    assert rows["bob"]["held_hours"] == pytest.approx(HELD / 3600, abs=1e-6)
    assert rows["frank"]["buckets"] == [[T0, pytest.approx(0.5, abs=1e-6)]]
    assert by_user["total"]["gpu_hours"] == pytest.approx((3 * HELD + 1800) / 3600, abs=1e-5)
    by_gpu = {r["key"]: r["gpu_hours"] for r in usage_report(lab.store.usage, "gpu", T0, T0 + 3600, "day")["rows"]}
    assert by_gpu == pytest.approx({"lab-host/0": HELD / 3600, "lab-host/1": HELD / 3600,
                                    "lab-host/2": HELD / 3600, "lab-host/3": 0.5}, abs=1e-6)
    by_run = {r["key"]: r["gpu_hours"] for r in usage_report(lab.store.usage, "run", T0, T0 + 3600, "hour")["rows"]}
    assert by_run["r-dave"] == pytest.approx(1200 / 3600, abs=1e-6)
    assert by_run[""] == pytest.approx((828.75 + HELD + 60 + 1800) / 3600, abs=1e-6)


def test_counters_hold_the_live_totals_and_never_go_down_when_records_are_trimmed() -> None:
    lab = Lab()
    lab.run_scenario_hour()
    before = lab.store.usage.user_totals()
    assert before["carol"].idle_s == pytest.approx(HELD)
    lab.store.usage.max_age_s = 60.0
    assert lab.store.usage.trim(T0 + 3600) > 0
    assert lab.store.usage.user_totals() == before


def test_a_collector_that_never_comes_back_accrues_max_hold_s_and_shutdown_closes_the_open_minute() -> None:
    lab = Lab()
    lab.join({})
    lab.tick(T0)
    lab.tick(T0 + 5)
    for k in range(2, 40):  # the GPU collector is gone; the accountant keeps ticking
        lab.tick(T0 + 5 * k, gpu=False)
    found = totals(lab.store.usage.records(T0, T0 + 3600))
    assert found[("carol", "")]["held_s"] == pytest.approx(5 + 15)  # closed once the minute ended
    lab.tick(T0 + 200)  # back: a new open hold in minute 3
    lab.now = T0 + 203
    lab.accountant.close()
    found = totals(lab.store.usage.records(T0, T0 + 3600))
    assert found[("carol", "")]["held_s"] == pytest.approx(5 + 15 + 3)


def test_a_clock_stepping_backwards_counts_nothing_negative() -> None:
    lab = Lab()
    lab.join({})
    lab.tick(T0 + 100)
    lab.tick(T0 + 50)  # the clock was set back 50 s
    lab.tick(T0 + 55)
    lab.tick(T0 + 180)  # a long gap: 15 s at most
    records = lab.store.usage.records(T0, T0 + 3600)
    assert records and all(r.held_s >= 0 for r in records)
    assert totals(records)[("carol", "")]["held_s"] == pytest.approx(5 + 15)
