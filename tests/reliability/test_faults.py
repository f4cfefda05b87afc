"""Faults on a live labwall server with a live wall open in Chromium.

For each fault: the wall stays up (the same page, its clock moving), the degraded part is shown on
the wall, /healthz says `degraded` with a reason naming the part, and once the fault clears labwall
recovers within 10 s, measured on the server's own clock (event and /healthz times).

Two servers, faults grouped where they do not interfere:
- GPU faults from the simulated backend's scenario events (the only fake: this machine has no GPU):
  nvmlInit failing, a GPU lost and back, a GPU call hanging for longer than the interval. Their
  times count from the backend's start, which lies after the server was spawned, so
  "event time - (spawn time + scheduled clear time)" is an upper bound of each recovery.
- Everything else on a server running as `nobody`: real child processes it may not read
  (AccessDenied) or that exit while listed (NoSuchProcess), the file-watch observer thread killed
  inside the server (tests/reliability/sitecustomize_faults), a run root removed and restored, and
  a run root on a real 4 MiB tmpfs filled up.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from browser_support import open_wall, write_json
from faults_support import (
    NOBODY,
    Child,
    FaultServer,
    WallWatch,
    append_lines,
    assert_recovered_in_time,
    fill_until_full,
    open_dir,
    reasons,
    shared_dir,
    small_filesystem,
    wait_step,
    write_until_enospc,
)
from playwright.sync_api import Browser
from support import wait_for

from collectors.base import CollectorThread
from collectors.host import DiskUsageReader, HostCollector
from monitor.model.store import Store
from monitor.web.api import health

GPU_INTERVAL_S = 0.5
# nvmlInit fails long enough for the page to open meanwhile on a loaded 2-core machine (start-up
# has taken up to 6.5 s there, opening the page as long again)
INIT_FAILS_UNTIL_S = 22.0
LOST_AT_S, BACK_AT_S = 26.0, 33.0
HANG_AT_S, HANG_FOR_S = 37.0, 6.0


@dataclass
class Wall:
    server: FaultServer
    watch: WallWatch
    paths: dict[str, Path]
    children: dict[str, Child]


def elapsed_on(server: FaultServer) -> float:
    return time.time() - server.spawned_at


# -- GPU faults (scenario events of the simulated backend) -----------------------------------------
@pytest.fixture(scope="module")
def gpu_wall(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wall]:
    workdir = tmp_path_factory.mktemp("gpu-faults")
    scenario = write_json(workdir / "scenario.json", {
        "gpus": [
            {"name": "NVIDIA H100 80GB HBM3 (simulated)",
             "processes": [{"pid": 4242, "user": "alice", "command": "python train.py", "gpu_memory_bytes": 2**33}]},
            {"name": "NVIDIA H100 80GB HBM3 (simulated)", "processes": []},
        ],
        "events": [
            {"at_s": 0, "event": "init_failure", "until_s": INIT_FAILS_UNTIL_S},
            {"at_s": LOST_AT_S, "gpu": 1, "event": "lost"},
            {"at_s": BACK_AT_S, "gpu": 1, "event": "recovered"},
            {"at_s": HANG_AT_S, "gpu": 0, "event": "hang", "for_s": HANG_FOR_S},
        ],
    })
    config = {
        "gpu": {"backend": "simulated", "simulated_scenario": str(scenario), "interval_s": GPU_INTERVAL_S,
                "nvml_retry_s": 1.0},
        "host": {"interval_s": 0.5},
        "wall": {"flush_interval_s": 0.5},
    }
    server = FaultServer(workdir, config).start()
    started = server.wait_event("labwall started on", 5)
    # The recovery bounds below include this start-up time (the backend's clock starts inside it).
    print(f"GPU faults: spawn to 'labwall started' {started['time'] - server.spawned_at:.2f} s")
    page = open_wall(browser, server.url)
    try:
        yield Wall(server, WallWatch(page), {}, {})
    finally:
        page.context.close()
        server.stop()


@pytest.mark.browser
def test_nvml_init_failure_is_shown_and_recovers(gpu_wall: Wall) -> None:
    server, watch = gpu_wall.server, gpu_wall.watch
    assert elapsed_on(server) < INIT_FAILS_UNTIL_S - 2, "the wall opened too late to see nvmlInit failing"
    body = server.wait_health(lambda b: reasons(b, "gpu"), 5, "gpu degraded while nvmlInit fails")
    assert body["status"] == "degraded"
    assert reasons(body, "gpu") == ["gpu: unavailable — no NVIDIA driver found"]
    watch.wait_text(".wall .nogpu-t", "No GPUs on this host")
    watch.wait_text(".wall .nogpu-r", "no NVIDIA driver found")
    watch.assert_streaming()

    recovered = server.wait_event("gpu collector recovered", INIT_FAILS_UNTIL_S + 15)
    assert_recovered_in_time("nvmlInit failure", recovered["time"] - (server.spawned_at + INIT_FAILS_UNTIL_S))
    server.wait_health(lambda b: not reasons(b, "gpu"), 5, "gpu ok after nvmlInit works again")
    watch.wait_text(".wall .t-idx", "GPU 1")
    watch.wait_gone(".wall .nogpu-t", "No GPUs")
    watch.assert_streaming()


@pytest.mark.browser
def test_gpu_lost_mid_run_and_back(gpu_wall: Wall) -> None:
    server, watch = gpu_wall.server, gpu_wall.watch
    body = server.wait_health(lambda b: any("GPU 1 lost" in r for r in reasons(b, "gpu")), LOST_AT_S + 15,
                              "GPU 1 lost")
    assert body["status"] == "degraded"
    assert reasons(body, "gpu") == ["gpu: GPU 1 lost: GPU is lost"], body["reasons"]
    assert body["collectors"]["gpu"]["state"] == "ok"  # one lost GPU: the others go on
    watch.wait_text(".wall .t-state", "LOST")
    watch.wait_text(".wall .t-lost", "Lost: GPU is lost")
    watch.wait_text(".wall .ev-log", "GPU 1 lost")
    assert watch.count_text(".wall .t-state", "LOST") == 1
    watch.assert_streaming()

    recovered = server.wait_event("GPU 1 recovered", BACK_AT_S + 15)
    assert_recovered_in_time("GPU lost and back", recovered["time"] - (server.spawned_at + BACK_AT_S))
    server.wait_health(lambda b: not reasons(b, "gpu"), 5, "gpu ok once GPU 1 answers")
    watch.wait_gone(".wall .t-state", "LOST")
    watch.assert_streaming()


@pytest.mark.browser
def test_gpu_collector_hanging_longer_than_its_interval(gpu_wall: Wall) -> None:
    server, watch = gpu_wall.server, gpu_wall.watch
    body = server.wait_health(lambda b: any("hung" in r for r in reasons(b, "gpu")), HANG_AT_S + 15,
                              "the GPU collector reported hung")
    assert body["status"] == "degraded"
    [reason] = reasons(body, "gpu")
    assert reason.startswith("gpu: error — hung: a reading has not returned for "), reason
    hung_since = body["collectors"]["gpu"]["hung_since"]
    assert server.spawned_at + HANG_AT_S <= hung_since + GPU_INTERVAL_S + 0.5  # the hang began as scheduled
    watch.wait_text(".wall .pill", "STALE")
    watch.wait_text(".wall .age", "GPU data")
    watch.wait_text(".wall .ev-log", "gpu collector hung: a reading has not returned for")
    watch.assert_streaming()  # the page ticks on while the GPU thread is stuck

    cleared_at = server.spawned_at + HANG_AT_S + HANG_FOR_S  # the hang ends no earlier than this
    returned = server.wait_event("gpu collector recovered: the hung reading returned after", HANG_AT_S + 25)
    assert_recovered_in_time("GPU collector hang (collector)", returned["time"] - cleared_at)
    body = server.wait_health(lambda b: b["collectors"]["gpu"]["last_sample"] > returned["time"] and
                              not reasons(b, "gpu"), 10, "fresh GPU readings after the hang")
    assert_recovered_in_time("GPU collector hang (fresh data)", body["collectors"]["gpu"]["last_sample"] - cleared_at)
    watch.wait_text(".wall .pill", "LIVE")
    assert_recovered_in_time("GPU collector hang (wall LIVE again, test clock)", time.time() - cleared_at)
    watch.assert_streaming()


# -- processes, the file watcher and the run roots (server as nobody) ------------------------------
@pytest.fixture(scope="module")
def runs_wall(browser: Browser) -> Iterator[Wall]:
    assert os.geteuid() == 0, "these faults need root: to run the server as nobody and to mount a tmpfs (CI is root)"
    with shared_dir("labwall-faults-") as base:
        root = open_dir(base / "runs")
        run = open_dir(root / "exp")
        full = base / "full"
        with small_filesystem(full):
            filled = open_dir(full / "filling")
            (filled / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n"
                                                          for s in range(1, 4)))
            # hidden: root's process whose cwd and open files nobody may read; named: its command line says the run
            hidden = Child(cwd=run, JOIN_HOLD=str(run / "metrics.jsonl"))
            named = Child("--output_dir", str(run))
            children = {"hidden": hidden, "named": named}
            try:
                yield from _serve_runs_wall(browser, base, {"root": root, "run": run, "full": full,
                                                            "filled": filled}, children)
            finally:
                for child in children.values():
                    child.stop()


def _serve_runs_wall(browser: Browser, base: Path, paths: dict[str, Path],
                     children: dict[str, Child]) -> Iterator[Wall]:
    scenario = write_json(base / "scenario.json", {"gpus": [
        {"processes": [
            {"pid": children["hidden"].pid, "user": "alice", "command": "python train.py", "gpu_memory_bytes": 2**31},
            {"pid": children["named"].pid, "user": "bob", "command": f"python train.py --output_dir {paths['run']}",
             "gpu_memory_bytes": 2**30},
        ]},
        {"processes": []},
    ]})
    config = {
        "gpu": {"backend": "simulated", "simulated_scenario": str(scenario), "interval_s": 0.5},
        "host": {"interval_s": 0.5},
        "wall": {"flush_interval_s": 0.5},
        # rescan_s 60: within a test, anything found again was found through file events
        "runs": {"roots": [str(paths["root"]), str(paths["full"])], "rescan_s": 60.0, "writer_check_s": 1.0},
        "join": {"interval_s": 0.5, "retry_s": 1.0, "recheck_s": 2.0},
        "alerts": {"disk_full": {"for_s": 0, "clear_after_s": 1}},
    }
    server = FaultServer(base, config, uid=NOBODY).start()
    page = open_wall(browser, server.url)
    try:
        yield Wall(server, WallWatch(page), paths, children)
    finally:
        page.context.close()
        server.stop()


@pytest.mark.browser
def test_processes_it_may_not_read_or_that_vanish_are_unknown_run(runs_wall: Wall) -> None:
    server, watch, children = runs_wall.server, runs_wall.watch, runs_wall.children
    assert psutil.Process(server.proc.pid).uids().real == NOBODY  # so root's /proc/PID/cwd and fd are EACCES
    body = server.wait_health(lambda b: b["collectors"]["join"].get("unknown") == 1 and
                              b["collectors"]["join"].get("joined") == 1, 20, "one process joined, one unknown")
    assert body["collectors"]["join"]["state"] == "ok" and not reasons(body, "join")
    watch.wait_text(".wall .p-run", "unknown run")  # alice's process: AccessDenied
    watch.wait_text(".wall .p-cmd", "· exp")  # bob's: its command line names the run
    assert watch.count_text(".wall .p-run", "unknown run") == 1

    killed_at = time.time()
    children["named"].kill()  # NVML (the scenario) still lists its pid: NoSuchProcess for every read
    body = server.wait_health(lambda b: b["collectors"]["join"].get("unknown") == 2, 15, "the dead process unknown")
    assert body["collectors"]["join"]["state"] == "ok" and not reasons(body, "join")
    assert body["collectors"]["gpu"]["state"] == "ok"
    assert_recovered_in_time("NoSuchProcess: shown as unknown run after the kill", body["time"] - killed_at)
    watch.wait_count(".wall .p-run", "unknown run", 2, timeout=10)
    watch.wait_text(".wall .t-state", "BUSY")  # the tile of GPU 0 goes on showing its readings
    watch.assert_streaming()
    last = body["collectors"]["join"]["last_sample"]
    server.wait_health(lambda b: b["collectors"]["join"]["last_sample"] > last + 1, 10, "the join ticking on")


@pytest.mark.browser
def test_file_watch_observer_thread_killed(runs_wall: Wall) -> None:
    server, watch, paths = runs_wall.server, runs_wall.watch, runs_wall.paths
    metrics = paths["run"] / "metrics.jsonl"
    append_lines(metrics, [{"step": 2, "loss": 0.5}])
    server.wait_health(lambda b: b["collectors"]["runs"]["watch"]["events"] == "on", 10, "file events on")
    wait_step(server, "exp", 2)
    cursor = server.event_cursor()

    os.kill(server.proc.pid, signal.SIGUSR2)  # tests/reliability/sitecustomize_faults: an exception in that thread
    wait_for(lambda: "sitecustomize: ObserverKilled raised" in server.logs(), 10, what="the SIGUSR2 hook ran")
    append_lines(metrics, [{"step": 3, "loss": 0.3}])  # its next file event wakes the thread: it dies there
    body = server.wait_health(lambda b: reasons(b, "runs"), 10, "runs degraded after the observer died")
    [reason] = reasons(body, "runs")
    assert reason.startswith("runs: file watcher restarted ") and "ObserverKilled" in reason, reason
    restarted = server.wait_event("file watcher stopped (ObserverKilled: killed by SIGUSR2", 10, cursor)
    assert restarted["level"] == "warning" and restarted["text"].endswith("restarted, rescanning")
    watch.wait_text(".wall .ev-log", "file watcher stopped (ObserverKilled")
    watch.assert_streaming()

    body = server.wait_health(lambda b: (b["collectors"]["runs"]["last_rescan"] or 0) >= restarted["time"] and
                              b["collectors"]["runs"]["watch"]["observer_restarts"] == 1, 10, "rescan after restart")
    assert body["collectors"]["runs"]["watch"]["events"] == "on"
    wait_step(server, "exp", 3)  # the line that met the dead thread: read by the rescan after the restart
    appended_at = time.time()
    append_lines(metrics, [{"step": 4, "loss": 0.25}])  # only file events bring it now: the next rescan is 60 s away
    wait_step(server, "exp", 4)
    assert_recovered_in_time("observer killed: appended line in /api/runs (test clock)", time.time() - appended_at)
    body = server.wait_health(lambda b: not reasons(b, "runs"), 10, "runs ok after the restart")
    assert_recovered_in_time("observer killed (health)", body["time"] - restarted["time"])
    watch.assert_streaming()


@pytest.mark.browser
def test_run_root_removed_and_restored(runs_wall: Wall) -> None:
    server, watch, paths = runs_wall.server, runs_wall.watch, runs_wall.paths
    root = paths["root"]
    # alice's process keeps its cwd below the root: that pins the root's dentry, so inotify sends no
    # IN_DELETE_SELF and the watch on the removed root lives on; labwall must notice all the same
    assert runs_wall.children["hidden"].proc.poll() is None
    cursor = server.event_cursor()
    shutil.rmtree(root)
    body = server.wait_health(lambda b: any("run root missing" in r for r in reasons(b, "runs")), 15,
                              "runs degraded naming the missing root")
    assert reasons(body, "runs")[0].startswith(f"runs: run root missing: {root}"), body["reasons"]
    body = server.wait_health(lambda b: f"host: disk of run root {root}: not found" in b["reasons"], 10,
                              "the host names the root's disk")
    server.wait_event(f"run root {root} is missing", 10, cursor)
    watch.wait_text(".wall .ev-log", f"run root {root} is missing")
    watch.wait_disk_row(root, "row.text === 'not found'")
    watch.assert_streaming()

    open_dir(root)
    append_lines(open_dir(root / "back") / "metrics.jsonl", [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}])
    restored_at = time.time()
    wait_step(server, "back", 2)
    assert_recovered_in_time("run root restored: new run in /api/runs (test clock)", time.time() - restored_at)
    body = server.wait_health(lambda b: not reasons(b, "runs") and not reasons(b, "host"), 10, "runs and host ok")
    assert_recovered_in_time("run root restored (health)", body["time"] - restored_at)
    server.wait_event(f"run root {root} is back", 5, cursor)
    watch.wait_disk_row(root, "row.text.includes('% of')")
    watch.assert_streaming()


@pytest.mark.browser
def test_run_root_disk_filling_up(runs_wall: Wall) -> None:
    server, watch, paths = runs_wall.server, runs_wall.watch, runs_wall.paths
    full, metrics = paths["full"], paths["filled"] / "metrics.jsonl"
    wait_step(server, "filling", 3)
    filler = full / "filler.bin"
    assert fill_until_full(filler) > 3 * 2**20
    step, failed = write_until_enospc(metrics, first_step=4)
    assert failed, "the writer never ran out of space"
    body = server.wait_health(lambda b: any(r.startswith(f"host: disk of run root {full} is ") for r in b["reasons"]),
                              10, "host degraded naming the full disk")
    assert any(r == f"host: disk of run root {full} is 100 % full" for r in body["reasons"]), body["reasons"]
    assert body["collectors"]["runs"]["state"] == "ok"  # the tailer met a half-written last line and went on
    watch.wait_disk_row(full, "row.cls.includes('crit') && row.text.startsWith('100 % of')")
    watch.wait_text(".wall .al-title", f"disk {full} full")
    watch.assert_streaming()

    filler.unlink()
    freed_at = time.time()
    append_lines(metrics, [{"step": s, "loss": 1.0 / s} for s in range(step, step + 3)])
    body = server.wait_health(lambda b: not reasons(b, "host"), 10, "host ok once space is freed")
    assert_recovered_in_time("disk full (health)", body["time"] - freed_at)
    run = wait_step(server, "filling", step + 2)
    assert_recovered_in_time("disk full: lines after the fault in /api/runs (test clock)", time.time() - freed_at)
    assert run["bad_lines"] <= 1, run  # at most the one line cut short by ENOSPC
    assert server.health()["collectors"]["runs"]["state"] == "ok"
    watch.wait_gone(".wall .al-title", f"disk {full} full")
    assert_recovered_in_time("disk full: alert gone from the wall (test clock)", time.time() - freed_at)
    watch.assert_streaming()


# -- a hung mount must not stall the host collector (unit level, no server) ------------------------
class HangingDisks:
    """Disk usage that blocks, as statvfs on a dead NFS server does in the kernel, for `hung` paths."""

    def __init__(self) -> None:
        self.hung: set[Path] = set()
        self.release = threading.Event()
        self.started: list[Path] = []

    def read(self, path: Path) -> dict[str, Any]:
        self.started.append(path)
        if path in self.hung:
            self.release.wait(30)
        usage = shutil.disk_usage(path)
        return {"path": str(path), "total_bytes": usage.total, "used_bytes": usage.used,
                "free_bytes": usage.free, "used_ratio": usage.used / (usage.used + usage.free)}


def test_a_hung_disk_usage_read_does_not_stall_the_host_collector(tmp_path: Path) -> None:
    good, nfs = tmp_path / "good", tmp_path / "nfs"
    good.mkdir()
    nfs.mkdir()
    disks = HangingDisks()
    store = Store("h")
    collector = HostCollector(store, 1.0, disk_paths=[good, nfs], disk_full_ratio=0.999)
    collector.disk_usage = DiskUsageReader([good, nfs], timeout_s=0.2, read=disks.read, hung_after_s=0.5)
    runner = CollectorThread(collector)

    def tick() -> list[dict[str, Any]]:
        began = time.monotonic()
        assert runner.step() is None
        assert time.monotonic() - began < 2.0  # it waited 0.2 s for the disks, not 30 s for the hung one
        return store.state("system")[1]["disks"]

    assert all("used_ratio" in d for d in tick())
    disks.hung.add(nfs)
    try:
        # a read that is slow shows the previous reading for hung_after_s (a slow mount does not flap) ...
        assert "used_ratio" in tick()[1]
        # ... then says the mount does not answer, without starting another blocked read each tick
        found = wait_for(lambda: "error" in (d := tick()[1]) and d, 10, 0, what="the hung path reported")
        assert found["error"].startswith("not responding for ") and found["error"].endswith(" s (hung mount?)")
        assert tick()[0]["used_ratio"] is not None  # the other root is read every tick
        assert disks.started.count(nfs) == 2 and disks.started.count(good) >= 4
        assert collector.disk_usage.stuck() == 1
        body = health(store)
        assert body["status"] == "degraded"
        [reason] = body["reasons"]
        assert reason.startswith(f"host: disk of run root {nfs}: not responding for "), reason
    finally:
        disks.release.set()
    wait_for(lambda: collector.disk_usage.stuck() == 0, 5, what="the hung read returning")
    assert "error" not in tick()[1]
    assert health(store)["status"] == "ok"
