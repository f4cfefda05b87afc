"""Demo mode shows every feature: four users' trainers in three layouts reach the statuses a
newcomer should see, their real pids sit on the simulated GPUs, and the real join names them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from runs_support import Watch
from support import LabwallServer, wait_for

from collectors.gpu.simulated import SimulatedNvml
from monitor.demo.lab import TRAINERS, DemoLab, DemoTrainer

FAST = (
    DemoTrainer("alice", "alice/demo-llama", "jsonl", 10_000, gpus=(0, 1)),
    DemoTrainer("bob", "bob/mnist-lightning", "lightning_csv", 25, once=True, gpus=(2,)),
    DemoTrainer("dave", "dave/resnet-sweep", "jsonl", 10_000, fate="crash", fate_after_s=2, gpus=(2,)),
    DemoTrainer("carol", "carol/bert-finetune", "hf_trainer", 10_000, fate="stall", fate_after_s=3, gpus=(3,)),
    DemoTrainer("erin", "erin/churn-xgb", "mlflow", 20, once=True, gpus=(4,)),  # a CPU job with 4 GPUs
)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[DemoLab]:
    lab = DemoLab(tmp_path / "runs", gpu_count=4, interval_s=0.1, trainers=FAST)
    yield lab
    lab.stop()


def test_every_status_and_layout_within_seconds(lab: DemoLab) -> None:
    lab.root.mkdir(parents=True)
    watch = Watch(lab.root, writer_check_s=0.2, stall_min_s=2.0, stall_factor=2.0).start()
    lab.start()  # as on a lab server: labwall watches, then the trainers start
    try:
        expected = {"alice/demo-llama": ("jsonl", "running"),
                    "bob/mnist-lightning/version_0": ("lightning_csv", "finished"),
                    "dave/resnet-sweep": ("jsonl", "crashed"),
                    "carol/bert-finetune": ("hf_trainer", "stalled"),
                    "churn-xgb": ("mlflow", "finished")}
        for name, (layout, status) in expected.items():
            run = watch.wait_run(name, timeout=20, status=status)
            assert run["format"] == layout, run
        assert "illegal memory access" in watch.run("dave/resnet-sweep")["status_reason"]
    finally:
        watch.stop()


def test_scenario_puts_the_real_pids_on_the_gpus_and_frees_a_crashed_ones(lab: DemoLab) -> None:
    scenario_path = lab.start()
    nvml = SimulatedNvml(scenario=__import__("json").loads(scenario_path.read_text()))
    nvml.nvmlInit()
    pids = {t.user: p.pid for t, p in zip(lab.trainers, lab.processes, strict=True)}

    def users_on(index: int) -> set[str]:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        listed = {p.pid for p in nvml.nvmlDeviceGetComputeRunningProcesses(handle)}
        return {user for user, pid in pids.items() if pid in listed}

    assert users_on(0) == users_on(1) == {"alice"}
    assert users_on(3) == {"carol"}
    assert nvml.process_info(pids["carol"]).user == "carol"
    assert users_on(2) == {"bob", "dave"}
    wait_for(lambda: users_on(2) == {"bob"}, timeout=15, what="dave's crashed process leaving GPU 2")


def test_demo_server_tiles_name_user_and_run_through_the_join(
        labwall_server: Callable[..., LabwallServer]) -> None:
    server = labwall_server({"gpu": {"simulated_count": 8}}, args=["--demo"])

    def joined() -> dict[str, set[str]]:
        gpus = server.get("/api/snapshot").json()["gpus"]
        return {t.user: {p.get("run_name") for g in gpus for p in g.get("processes", []) if p.get("user") == t.user}
                for t in TRAINERS}

    def all_joined() -> dict[str, set[str]] | None:
        names = joined()
        return names if all(v and None not in v for v in names.values()) else None

    names = wait_for(all_joined, timeout=30, what="every demo user's GPU process joined to its run")
    assert names["alice"] == {"alice/demo-llama"} and names["carol"] == {"carol/bert-finetune"}
    layouts = {"jsonl", "lightning_csv", "hf_trainer"}  # HF's layout shows with its first checkpoint (10 s)
    wait_for(lambda: layouts <= {r["format"] for r in server.get("/api/runs").json()}, timeout=40,
             what=f"runs in the layouts {sorted(layouts)}")
