"""The split rule: a GPU's time split by GPU memory between (user, run) groups; unknown memory,
unknown users, untrusted joins (a reused pid), lost GPUs and unknown utilisation."""

from __future__ import annotations

import pytest

from monitor.usage.split import holdings, memory_weights

GIB = 2**30


def gpu(processes: list[dict], util: float | None = 50.0, power: float | None = 200.0, **extra: object) -> dict:
    return {"index": 0, "uuid": "GPU-x", "status": "ok", "utilization_gpu_percent": util,
            "power_draw_watts": power, "processes": processes, **extra}


def test_memory_shares_add_up_and_unknown_memory_counts_as_the_mean_of_the_known() -> None:
    assert memory_weights([3.0, 1.0]) == [0.75, 0.25]
    assert memory_weights([3.0, 1.0, None]) == pytest.approx([0.5, 1 / 6, 1 / 3])  # stand-in: mean 2
    assert memory_weights([None, None, None]) == pytest.approx([1 / 3] * 3)
    assert memory_weights([0.0, 0.0]) == [0.5, 0.5]


def test_processes_of_one_user_and_run_are_one_holding() -> None:
    doc = {"gpus": [gpu([{"pid": 1, "user": "ann", "gpu_memory_bytes": GIB},
                         {"pid": 2, "user": "ann", "gpu_memory_bytes": GIB},
                         {"pid": 3, "user": None, "gpu_memory_bytes": 2 * GIB}])]}
    found = {(h.user, h.run): h.share for h in holdings(doc, {}, 5.0)}
    assert found == {("ann", ""): 0.5, ("", ""): 0.5}


def test_a_join_about_another_user_of_the_same_pid_is_not_trusted() -> None:
    doc = {"gpus": [gpu([{"pid": 7, "user": "erin", "gpu_memory_bytes": GIB},
                         {"pid": 8, "user": "ann", "gpu_memory_bytes": GIB}])]}
    join = {"by_pid": {7: {"run_id": "r-dave", "user": "dave"}, 8: {"run_id": "r-ann", "user": "ann"}}}
    assert {(h.user, h.run) for h in holdings(doc, join, 5.0)} == {("erin", ""), ("ann", "r-ann")}


def test_idle_busy_and_power_follow_the_gpu_and_unknowns_are_neither_idle_nor_busy() -> None:
    one = [{"pid": 1, "user": "ann", "gpu_memory_bytes": GIB}]
    idle = holdings({"gpus": [gpu(one, util=4.9)]}, {}, 5.0)[0]
    assert (idle.idle, idle.util, idle.power_w) == (True, pytest.approx(0.049), 200.0)
    assert holdings({"gpus": [gpu(one, util=5.0)]}, {}, 5.0)[0].idle is False
    unknown = holdings({"gpus": [gpu(one, util=None, power=None)]}, {}, 5.0)[0]
    assert (unknown.idle, unknown.util, unknown.power_w, unknown.share) == (False, 0.0, 0.0, 1.0)


def test_a_lost_gpu_or_one_without_processes_is_held_by_nobody() -> None:
    one = [{"pid": 1, "user": "ann", "gpu_memory_bytes": GIB}]
    assert holdings({"gpus": [gpu(one, status="lost"), gpu([])]}, {}, 5.0) == []
    assert holdings(None, None, 5.0) == []
