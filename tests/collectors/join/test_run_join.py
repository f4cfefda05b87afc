"""The run join with the NVML double and real processes: which run each GPU process writes.

Every process here is a real child (tests/join_child.py) holding a real run file open, sitting in a
run directory, or naming one on its command line; FakeNvml reports its real pid on a GPU.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from fake_nvml import FakeNvml
from support import ROOT, wait_for

from collectors.base import CollectorThread
from collectors.gpu.collector import GpuCollector
from collectors.gpu.nvml import NvmlBackend
from collectors.gpu.processes import ProcessLookup
from collectors.join.collector import NO_RUN, UNKNOWN_RUN, RunJoinCollector
from collectors.join.run_index import JoinProcess, argument_paths
from collectors.runs import RunsCollector
from monitor.app import build_collectors
from monitor.config import ConfigError, JoinConfig, RunsConfig, parse_config
from monitor.model.run_registry import run_id_for
from monitor.model.store import Store
from monitor.web.api import snapshot

TESTS = Path(__file__).resolve().parents[2]
CHILD = TESTS / "join_child.py"
ME = pwd.getpwuid(os.getuid()).pw_name


class Child:
    """A real process started by the test; `pid` is the one FakeNvml reports, `child_pid` its own child."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(command, cwd=cwd, env={**os.environ, "PYTHONPATH": str(TESTS), **(env or {})},
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        words = self.proc.stdout.readline().split()
        assert words[:1] == ["ready"], f"child did not start: {words}"
        self.pid = int(words[1])
        self.child_pid = int(words[2]) if len(words) > 2 else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class World:
    """A store, FakeNvml on 2 GPUs with the real GPU collector, a run root and a join collector."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.root = tmp_path / "runs"
        self.root.mkdir()
        self.elsewhere = tmp_path / "home"
        self.elsewhere.mkdir()
        self.store = Store("test-host")
        self.nvml = FakeNvml(count=2)
        self.gpu = GpuCollector(self.store, 1.0, NvmlBackend(self.nvml), processes=ProcessLookup())
        self.gpu.setup()
        self.join = RunJoinCollector(self.store, JoinConfig(interval_s=0.1))
        self.children: list[Child] = []
        self.threads: list[CollectorThread] = []

    def run_dir(self, name: str, register: bool = True) -> tuple[Path, str]:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        run_id = run_id_for(str(path), name)
        if register:
            self.store.runs.add_run(run_id, name, str(path), str(self.root), "jsonl")
        return path, run_id

    def start(self, *args: str, cwd: Path | None = None, module: bool = False, **env: str) -> Child:
        command = [sys.executable, *(["-m", "join_child"] if module else [str(CHILD)]), *args]
        child = Child(command, cwd or self.elsewhere, env)
        self.children.append(child)
        return child

    def watch_runs(self, **config: Any) -> RunsCollector:
        """The real runs collector on the root, in its supervised thread."""
        settings = {"roots": [self.root], "interval_s": 0.05, "rescan_s": 30.0, **config}
        runs = RunsCollector(self.store, RunsConfig(**settings))
        thread = CollectorThread(runs)
        self.threads.append(thread)
        thread.start()
        wait_for(lambda: runs.initial_scan_done, timeout=10, what="the first scan of the run root")
        return runs

    def tick(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        self.gpu.collect(now)
        self.join.collect(now)
        state = self.store.state("gpu_runs")
        assert state is not None
        return state[1]

    def close(self) -> None:
        for thread in self.threads:
            thread.stop()
            thread.join(5)
        for child in self.children:
            child.stop()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


def run_named(store: Store, name: str) -> dict[str, Any] | None:
    return next((r for r in store.runs.summaries() if r["name"] == name), None)


# -- (a) a real writer of a real run --------------------------------------------------------------
def test_process_writing_a_run_is_joined_to_it_with_its_user(world: World) -> None:
    world.watch_runs()
    run = world.root / "llama-ft"
    run.mkdir()
    trainer = world.start(JOIN_HOLD=str(run / "metrics.jsonl"))  # the path is not on its command line
    run_id = wait_for(lambda: (r := run_named(world.store, "llama-ft")) and r["id"], what="the run discovered")
    world.nvml.add_process(1, trainer.pid, "ignored", "ignored", memory=3 * 2**30)

    doc = world.tick()
    assert doc["by_pid"][trainer.pid] == {"run_id": run_id, "run_name": "llama-ft", "via": "open_files",
                                          "user": ME, "reason": None}
    assert doc["by_run"] == {run_id: [{"gpu": 1, "uuid": "GPU-fake-0001", "pid": trainer.pid,
                                       "gpu_memory_bytes": 3 * 2**30}]}
    registry_gpus = world.store.runs.summary(run_id)["gpus"]
    assert registry_gpus == [{"gpu": 1, "uuid": "GPU-fake-0001", "pid": trainer.pid}]
    process = snapshot(world.store)["gpus"][1]["processes"][0]
    assert (process["pid"], process["user"], process["run_id"], process["run_name"]) == \
        (trainer.pid, ME, run_id, "llama-ft")
    assert snapshot(world.store)["gpus"][0]["processes"] == []

    # The process ends: while NVML still lists it, it is an unknown run; once gone, the run has no GPU.
    trainer.stop()
    doc = world.tick()
    assert doc["by_pid"][trainer.pid]["run_id"] is None and doc["by_pid"][trainer.pid]["reason"] == UNKNOWN_RUN
    assert world.store.runs.summary(run_id)["gpus"] == []
    world.nvml.gpus[1].processes.clear()
    assert world.tick() == {"by_pid": {}, "by_run": {}, "time": pytest.approx(time.time(), abs=5),
                            "tick_s": pytest.approx(0, abs=1)}


@pytest.mark.parametrize(
    ("how", "via"),
    [
        ("cwd", "cwd"),
        ("output_dir", "cmdline"),
        ("output_dir=", "cmdline"),
        ("hydra", "cmdline"),
        ("relative", "cmdline"),
        ("path inside", "cmdline"),
        ("root dir above runs", "cmdline"),
    ],
)
def test_each_kind_of_evidence_joins(world: World, how: str, via: str) -> None:
    run, run_id = world.run_dir("exp/version_1")
    world.run_dir("exp/version_0")  # older and finished: a --default_root_dir above both means version_1
    world.store.runs.set_status(run_id_for(str(world.root / "exp/version_0"), "exp/version_0"), "finished", None)
    args: dict[str, tuple[list[str], Path]] = {
        "cwd": ([], run),
        "output_dir": (["--output_dir", str(run), "--lr", "0.1"], world.elsewhere),
        "output_dir=": ([f"--output-dir={run}"], world.elsewhere),
        "hydra": (["trainer.max_epochs=3", f"hydra.run.dir={run}"], world.elsewhere),
        "relative": (["--logdir", "exp/version_1"], world.root),  # relative to its working directory
        "path inside": (["--config", str(run / "config.yaml")], world.elsewhere),
        "root dir above runs": (["--default_root_dir", str(world.root / "exp")], world.elsewhere),
    }
    argv, cwd = args[how]
    if how == "relative":  # its cwd is the root, not a run: only the argument can join it
        assert world.join.index.owner(str(world.root)) is None
    child = world.start(*argv, cwd=cwd)
    world.nvml.add_process(0, child.pid, "x", "x")
    assert world.tick()["by_pid"][child.pid] == {"run_id": run_id, "run_name": "exp/version_1", "via": via,
                                                 "user": ME, "reason": None}


def test_a_process_that_writes_no_known_run_is_no_run(world: World) -> None:
    world.run_dir("exp")
    notebook = world.start("--output_dir", str(world.tmp / "scratch"))
    world.nvml.add_process(0, notebook.pid, "x", "x")
    entry = world.tick()["by_pid"][notebook.pid]
    assert entry == {"run_id": None, "run_name": None, "via": None, "user": ME, "reason": NO_RUN}
    # The run it writes is discovered later: joined on the next tick, from what was already read.
    reads = world.join.reads
    _, run_id = world.run_dir("late")
    notebook2 = world.start(cwd=world.root / "late")
    world.nvml.add_process(1, notebook2.pid, "x", "x")
    assert world.tick()["by_pid"][notebook2.pid]["run_id"] == run_id
    assert world.join.reads == reads + 1


# -- (b) launchers ---------------------------------------------------------------------------------
def test_python_m_launcher_parent_joins_its_worker(world: World) -> None:
    run, run_id = world.run_dir("ddp")
    launcher = world.start("--nproc_per_node", "1", "--output_dir", str(run), module=True,
                           JOIN_SPAWN="1", JOIN_CHILD_CWD=str(world.elsewhere))
    assert launcher.child_pid is not None
    assert psutil.Process(launcher.child_pid).ppid() == launcher.pid
    assert psutil.Process(launcher.pid).cmdline()[1:3] == ["-m", "join_child"]
    world.nvml.add_process(0, launcher.child_pid, "x", "x")  # the worker holds the GPU, not the launcher
    entry = world.tick()["by_pid"][launcher.child_pid]
    assert (entry["run_id"], entry["via"], entry["user"]) == (run_id, "parent", ME)


def test_bash_script_in_the_run_dir_joins_the_process_it_starts(world: World) -> None:
    run, run_id = world.run_dir("bash-run")
    script = run / "run.sh"
    script.write_text(f'cd "{world.elsewhere}"\n"{sys.executable}" "{CHILD}" --lr 0.1\necho finished > /dev/null\n')
    bash = Child(["bash", str(script)], world.elsewhere)
    world.children.append(bash)
    assert psutil.Process(bash.pid).parent().name() == "bash"
    world.nvml.add_process(1, bash.pid, "x", "x")
    entry = world.tick()["by_pid"][bash.pid]
    assert (entry["run_id"], entry["via"]) == (run_id, "parent")


def test_launcher_on_the_gpu_whose_child_writes_the_run_joins_through_the_writer(world: World) -> None:
    world.watch_runs(writer_check_s=0.2)
    run = world.root / "spawned"
    run.mkdir()
    launcher = world.start(JOIN_SPAWN="1", JOIN_CHILD_HOLD=str(run / "metrics.jsonl"),
                           JOIN_CHILD_CWD=str(world.elsewhere))
    summary = wait_for(lambda: (r := run_named(world.store, "spawned")) and r["writer_pids"] == [launcher.child_pid]
                       and r, what="the runs watcher to find the writer")
    world.nvml.add_process(0, launcher.pid, "x", "x")
    entry = world.tick()["by_pid"][launcher.pid]
    assert (entry["run_id"], entry["via"]) == (summary["id"], "writer")


# -- (c) processes that cannot be read ------------------------------------------------------------
def test_unreadable_process_is_unknown_run_not_an_error(world: World) -> None:
    run, _ = world.run_dir("secret")
    other = world.start(cwd=run, JOIN_HOLD=str(run / "metrics.jsonl"))

    class Denied(JoinProcess):
        def _denied(self) -> Any:
            raise psutil.AccessDenied(self.pid)

        def cwd(self) -> str:
            return self._denied() if self.pid == other.pid else super().cwd()

        def cmdline(self) -> list[str]:
            return self._denied() if self.pid == other.pid else super().cmdline()

        def written_files(self, under: tuple[str, ...]) -> list[str]:
            return self._denied() if self.pid == other.pid else super().written_files(under)

    world.join = RunJoinCollector(world.store, JoinConfig(), process_factory=Denied)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(5)
    world.nvml.add_process(0, other.pid, "x", "x")
    world.nvml.add_process(1, gone.pid, "x", "x")
    world.gpu.collect(time.time())
    assert CollectorThread(world.join).step() is None  # a healthy tick
    assert world.join.health.state == "ok"
    doc = world.store.state("gpu_runs")[1]
    assert doc["by_pid"][other.pid] == {"run_id": None, "run_name": None, "via": None, "user": ME,
                                        "reason": UNKNOWN_RUN}
    assert doc["by_pid"][gone.pid]["reason"] == UNKNOWN_RUN
    assert snapshot(world.store)["gpus"][0]["processes"][0]["run_id"] is None


PROBE = """
import json, os, sys, time
import psutil, pwd
from collectors.join.collector import RunJoinCollector
from monitor.model.run_registry import run_id_for
from monitor.model.store import Store
pids, run = [int(p) for p in sys.argv[1].split(",")], sys.argv[2]
os.setgroups([]); os.setgid(65534); os.setuid(65534)  # everything is imported: now labwall is "nobody"
store = Store("probe")
store.runs.add_run(run_id_for(run, "exp"), "exp", run, os.path.dirname(run), "jsonl")
processes = [{"pid": pid, "user": None, "gpu_memory_bytes": 1} for pid in pids]
store.set_state("gpu", {"gpus": [{"index": 0, "uuid": "GPU-0", "processes": processes}]})
join = RunJoinCollector(store)
join.collect(time.time())
print(json.dumps({str(k): v for k, v in store.state("gpu_runs")[1]["by_pid"].items()}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a process as another user")
def test_another_users_process_is_unknown_run_for_real(world: World) -> None:
    """labwall as `nobody` looking at root's processes: their cwd and files are EACCES, for real."""
    run, run_id = world.run_dir("exp")
    hidden = world.start(cwd=run, JOIN_HOLD=str(run / "metrics.jsonl"))
    named = world.start("--output_dir", str(run))  # a command line is readable by everyone
    result = subprocess.run([sys.executable, "-c", PROBE, f"{hidden.pid},{named.pid}", str(run)], cwd=ROOT,
                            capture_output=True, text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    by_pid = json.loads(result.stdout)
    assert by_pid[str(hidden.pid)] == {"run_id": None, "run_name": None, "via": None, "user": "root",
                                       "reason": UNKNOWN_RUN}
    assert by_pid[str(named.pid)]["run_id"] == run_id and by_pid[str(named.pid)]["via"] == "cmdline"


# -- (d) the cache ---------------------------------------------------------------------------------
def test_a_process_is_read_once_per_recheck_and_forgotten_when_gone(world: World) -> None:
    run, run_id = world.run_dir("cached")
    calls: Counter[tuple[int, str]] = Counter()

    class Counting(JoinProcess):
        def cwd(self) -> str:
            calls[self.pid, "cwd"] += 1
            return super().cwd()

        def cmdline(self) -> list[str]:
            calls[self.pid, "cmdline"] += 1
            return super().cmdline()

        def written_files(self, under: tuple[str, ...]) -> list[str]:
            calls[self.pid, "open_files"] += 1
            return super().written_files(under)

    world.join = RunJoinCollector(world.store, JoinConfig(recheck_s=30), process_factory=Counting)
    trainer = world.start(JOIN_HOLD=str(run / "metrics.jsonl"))
    world.nvml.add_process(0, trainer.pid, "x", "x")
    world.nvml.add_process(1, trainer.pid, "x", "x")  # one process on two GPUs is read once
    t0 = time.time()
    assert world.tick(t0)["by_pid"][trainer.pid]["run_id"] == run_id
    first = {k: n for k, n in calls.items() if k[0] == trainer.pid}
    assert first == {(trainer.pid, "cwd"): 1, (trainer.pid, "cmdline"): 1, (trainer.pid, "open_files"): 1}
    for dt in (2.0, 4.0, 20.0):
        assert world.tick(t0 + dt)["by_run"][run_id][1]["gpu"] == 1
    assert {k: n for k, n in calls.items() if k[0] == trainer.pid} == first  # cached per (pid, create time)
    world.tick(t0 + 46.0)  # due again (recheck_s, spread over up to 1.5 times it)
    assert calls[trainer.pid, "open_files"] == 2

    trainer.stop()
    for gpu in world.nvml.gpus:
        gpu.processes.clear()
    world.tick(t0 + 47.0)
    world.tick(t0 + 100.0)
    assert not any(key[0] == trainer.pid for key in world.join.cache)


def test_read_budget_spreads_new_processes_over_ticks(world: World) -> None:
    runs = [world.run_dir(f"r{i}") for i in range(3)]
    children = [world.start(cwd=path) for path, _ in runs]
    for child in children:
        world.nvml.add_process(0, child.pid, "x", "x")
    world.join = RunJoinCollector(world.store, JoinConfig(budget_s=1e-9))  # one process a tick
    reasons = [e["reason"] for e in world.tick()["by_pid"].values()]
    assert sorted(reasons, key=str) == [None, "not read yet", "not read yet"]
    world.tick()
    by_pid = world.tick()["by_pid"]
    assert [by_pid[c.pid]["run_id"] for c in children] == [run_id for _, run_id in runs]


# -- (e) a real server: simulated GPUs naming a real pid ------------------------------------------
def test_snapshot_and_runs_api_carry_the_join(tmp_path: Path, labwall_server: Callable[..., Any]) -> None:
    root = tmp_path / "runs"
    run = root / "sim-ft"
    run.mkdir(parents=True)
    trainer = Child([sys.executable, str(CHILD)], tmp_path, {"JOIN_HOLD": str(run / "metrics.jsonl")})
    try:
        scenario = tmp_path / "scenario.json"
        scenario.write_text(json.dumps({"gpus": [
            {"name": "Sim GPU", "processes": [{"pid": trainer.pid, "user": ME, "command": "python train.py",
                                               "gpu_memory_bytes": 2**30}]},
            {"name": "Sim GPU", "processes": [{"pid": 999_999_999, "user": "bob", "command": "python x.py"}]},
        ]}))
        server = labwall_server(config={"gpu": {"backend": "simulated", "simulated_scenario": str(scenario)},
                                        "join": {"interval_s": 0.2}}, args=["--runs", str(root)])

        def joined() -> dict[str, Any] | None:
            process = server.get("/api/snapshot").json()["gpus"][0]["processes"][0]
            return process if process["run_id"] else None

        process = wait_for(joined, timeout=15, what="the simulated GPU's process joined to its run")
        runs = server.get("/api/runs").json()
        run_summary = next(r for r in runs if r["name"] == "sim-ft")
        assert process["run_id"] == run_summary["id"] == run_id_for(str(run), "sim-ft")
        assert (process["pid"], process["user"], process["run_name"]) == (trainer.pid, ME, "sim-ft")
        other = server.get("/api/snapshot").json()["gpus"][1]["processes"][0]
        assert (other["run_id"], other["run_name"]) == (None, None)  # a pid that does not exist here
        [entry] = run_summary["gpus"]
        assert (entry["gpu"], entry["pid"], entry["gpu_memory_bytes"]) == (0, trainer.pid, 2**30)
        assert 0 <= entry["utilization_gpu_percent"] <= 100
        assert server.get(f"/api/runs/{run_summary['id']}").json()["gpus"][0]["pid"] == trainer.pid
        assert server.get("/healthz").json()["collectors"]["join"]["state"] == "ok"
    finally:
        trainer.stop()


# -- wiring, config, parsing ---------------------------------------------------------------------
def test_join_runs_only_with_gpus_and_run_roots(tmp_path: Path) -> None:
    def names(data: dict[str, Any]) -> list[str]:
        return [c.name for c in build_collectors(parse_config(data), Store("h"))]

    with_roots = {"runs": {"roots": [str(tmp_path)]}, "gpu": {"backend": "simulated"}}
    assert "join" in names(with_roots)
    assert names(with_roots).index("join") < names(with_roots).index("alerts")
    assert "join" not in names({"gpu": {"backend": "simulated"}})
    assert "join" not in names({**with_roots, "gpu": {"enabled": False}})
    assert "join" not in names({**with_roots, "join": {"enabled": False}})
    with pytest.raises(ConfigError) as info:
        parse_config({"join": {"budget_s": 0, "intervall_s": 1}})
    assert any(p.startswith("join.budget_s: 0") for p in info.value.problems)
    assert any(p.startswith("join.intervall_s: unknown key") for p in info.value.problems)


def test_argument_paths() -> None:
    flagged, other = argument_paths(
        ["python", "train.py", "--output_dir", "out/a", "--logging-dir=/l/b", "--lr", "0.1", "data/x.bin",
         "trainer.default_root_dir=/r", "--cfg=conf/c.yaml", "--save_dir", "--next"], "/home/u")
    assert flagged == ("/home/u/out/a", "/l/b", "/r")
    assert other == ("/home/u/data/x.bin", "/home/u/conf/c.yaml")
    assert argument_paths(["x", "--output_dir", "rel"], None) == ((), ())


def test_bench_prints_its_figures() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "join_bench.py"), "--quick"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for figure in ("first tick (cold cache)", "steady state (warm cache)", "every process re-read", "p50", "p95"):
        assert figure in result.stdout, result.stdout
    assert "joined to the right run by the expected rule: 5/5; processes writing no run joined anyway: 0/1" \
        in result.stdout, result.stdout
