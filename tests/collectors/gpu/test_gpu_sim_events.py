"""Scheduled faults of the simulated GPU backend (scenario `events`), as the GPU collector sees them:
nvmlInit failing for a while, a call that hangs, an XID through the event sets; and their validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from collectors.base import CollectorThread
from collectors.gpu.collector import GpuCollector
from collectors.gpu.fields import NO_DRIVER
from collectors.gpu.sim_nvml import SimulatedNvml
from collectors.gpu.simulated import SimulatedBackend
from monitor.config import ConfigError, parse_config
from monitor.model.store import Store

T0 = 1_000_000.0
TWO_GPUS: list[dict[str, Any]] = [{"name": "A"}, {"name": "B"}]


class SimLab:
    """The simulated backend on a fake clock, with hangs recorded instead of slept."""

    def __init__(self, events: list[dict[str, Any]], **scenario: Any) -> None:
        self.t = T0
        self.slept: list[float] = []
        self.nvml = SimulatedNvml(
            scenario={"gpus": TWO_GPUS, "events": events, **scenario},
            clock=lambda: self.t,
            sleep=self.slept.append,
        )
        self.store = Store("testhost")
        self.collector = GpuCollector(self.store, 1.0, SimulatedBackend(self.nvml), clock=lambda: self.t,
                                      retry_s=2.0)  # fmt: skip
        self.thread = CollectorThread(self.collector)

    def at(self, elapsed: float) -> float | None:
        """One supervised reading `elapsed` seconds after the backend started."""
        self.t = T0 + elapsed
        return self.thread.step()

    def doc(self) -> dict[str, Any]:
        found = self.store.state("gpu")
        assert found is not None
        return found[1]


def test_init_failure_until_until_s_then_the_gpus_appear() -> None:
    lab = SimLab([{"at_s": 0, "event": "init_failure", "until_s": 8}])
    assert lab.at(0) == 2.0  # unavailable: retried after nvml_retry_s
    assert (lab.doc()["state"], lab.doc()["reason"]) == ("unavailable", NO_DRIVER)
    assert lab.at(7.9) == 2.0
    assert lab.at(8) is None
    assert lab.doc()["state"] == "ok" and len(lab.doc()["gpus"]) == 2
    assert lab.collector.health.snapshot()["state"] == "ok"


def test_hang_blocks_the_next_call_for_that_gpu_once() -> None:
    lab = SimLab([{"at_s": 5, "gpu": 0, "event": "hang", "for_s": 6}])
    assert lab.at(0) is None and lab.at(4.9) is None
    assert lab.slept == []
    assert lab.at(5) is None  # the call blocks and then answers: no exception, no lost GPU
    assert lab.slept == [6.0]
    assert [g["status"] for g in lab.doc()["gpus"]] == ["ok", "ok"]
    assert lab.at(6) is None and lab.at(30) is None
    assert lab.slept == [6.0]  # once


def test_hang_replays_once_per_repeat() -> None:
    lab = SimLab([{"at_s": 1, "gpu": 1, "event": "hang", "for_s": 2}], repeat_s=10)
    for elapsed in (0, 1, 2, 5, 11, 12, 21.5):
        lab.at(elapsed)
    assert lab.slept == [2.0, 2.0, 2.0]


def test_hang_really_blocks_the_collector_thread() -> None:
    nvml = SimulatedNvml(scenario={"gpus": TWO_GPUS, "events": [{"at_s": 0, "gpu": 1, "event": "hang", "for_s": 0.3}]})
    collector = GpuCollector(Store("testhost"), 1.0, SimulatedBackend(nvml))
    thread = CollectorThread(collector)
    assert thread.step() is None
    # The blocked call was timed by the thread itself: the reading took at least for_s.
    assert collector.health.last_sample is not None
    assert collector.health.last_sample - nvml.started >= 0.3


def test_scenario_xid_arrives_through_the_event_sets() -> None:
    lab = SimLab([{"at_s": 3, "gpu": 1, "event": "xid", "code": 79}])
    assert lab.at(0) is None and lab.at(2.9) is None
    assert [g["xid_errors"] for g in lab.doc()["gpus"]] == [[], []]
    assert lab.at(3) is None
    [xid] = lab.doc()["gpus"][1]["xid_errors"]
    assert (xid["code"], xid["meaning"]) == (79, "fallen off the bus")
    assert lab.doc()["gpus"][0]["xid_errors"] == []
    texts = [e.text for e in lab.store.events.read_after(0)]
    assert "GPU 1 XID 79: fallen off the bus" in texts
    lab.at(4)
    assert len(lab.doc()["gpus"][1]["xid_errors"]) == 1  # delivered once


def test_lost_and_recovered_still_work_beside_the_new_events() -> None:
    lab = SimLab([
        {"at_s": 2, "gpu": 1, "event": "lost"},
        {"at_s": 3, "gpu": 0, "event": "xid", "code": 48},
        {"at_s": 4, "gpu": 1, "event": "recovered"},
    ])  # fmt: skip
    statuses = []
    for elapsed in (0, 2, 3, 4):
        lab.at(elapsed)
        statuses.append([g["status"] for g in lab.doc()["gpus"]])
    assert statuses == [["ok", "ok"], ["ok", "lost"], ["ok", "lost"], ["ok", "ok"]]
    assert [x["code"] for x in lab.doc()["gpus"][0]["xid_errors"]] == [48]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"at_s": 0, "event": "init_failure"}, "events[1] (init_failure) needs until_s"),
        ({"at_s": 5, "event": "init_failure", "until_s": 5}, "events[1] (init_failure) needs until_s, seconds"),
        ({"at_s": 0, "gpu": 0, "event": "init_failure", "until_s": 3}, "events[1] (init_failure): unknown keys"),
        ({"at_s": 5, "gpu": 0, "event": "hang"}, "events[1] (hang) needs for_s"),
        ({"at_s": 5, "gpu": 0, "event": "hang", "for_s": -1}, "events[1] (hang) needs for_s"),
        ({"at_s": 5, "gpu": 2, "event": "hang", "for_s": 1}, "events[1] (hang) needs gpu, a GPU index < 2, not 2"),
        ({"at_s": 3, "event": "xid", "code": 79}, "events[1] (xid) needs gpu"),
        ({"at_s": 3, "gpu": 1, "event": "xid"}, "events[1] (xid) needs code, a positive XID number, not None"),
        ({"at_s": 3, "gpu": 1, "event": "xid", "code": True}, "events[1] (xid) needs code"),
        ({"at_s": -1, "gpu": 1, "event": "lost"}, "events[1] (lost) needs at_s"),
        ({"at_s": 1, "gpu": 1, "event": "explode"}, "events[1]: event must be one of lost, recovered, init_failure"),
        ({"at_s": 1, "gpu": 1, "event": "lost", "for_s": 3}, "events[1] (lost): unknown keys ['for_s']"),
    ],
)
def test_bad_events_are_named_at_config_load(tmp_path: Path, event: dict[str, Any], message: str) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps({"gpus": TWO_GPUS, "events": [{"at_s": 0, "gpu": 0, "event": "lost"}, event]}))
    with pytest.raises(ConfigError) as info:
        parse_config({"gpu": {"backend": "simulated", "simulated_scenario": str(path)}})
    assert len(info.value.problems) == 1
    problem = info.value.problems[0]
    assert problem.startswith("gpu.simulated_scenario: ") and f"— scenario {message}" in problem, problem


def test_the_documented_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps({"gpus": TWO_GPUS, "events": [
        {"at_s": 0, "event": "init_failure", "until_s": 8},
        {"at_s": 5, "gpu": 0, "event": "hang", "for_s": 6},
        {"at_s": 3, "gpu": 1, "event": "xid", "code": 79},
        {"at_s": 30, "gpu": 1, "event": "lost"},
        {"at_s": 60, "gpu": 1, "event": "recovered"},
    ]}))  # fmt: skip
    config = parse_config({"gpu": {"backend": "simulated", "simulated_scenario": str(path)}})
    assert config.gpu.simulated_scenario == path
