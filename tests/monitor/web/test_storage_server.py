"""Durable storage with a live server: /api/history, and every fault of the database file with the
wall staying up, /healthz `degraded` naming storage, an event, and recovery once the fault clears."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability.faults_support import fill_until_full, small_filesystem
from support import LabwallServer, wait_for

ROOT_USER = os.geteuid() == 0
FLUSH = {"flush_s": 0.5}  # honest config: writes every half second instead of every 10 s


def busy_scenario(tmp_path: Path) -> Path:
    """GPU 1 lost and back every 4 s: events and alert transitions to write all the time."""
    path = tmp_path / "scenario.json"
    gpu = {"name": "NVIDIA H100 80GB HBM3 (simulated)", "processes": []}
    path.write_text(json.dumps({"gpus": [gpu, gpu], "repeat_s": 4,
                                "events": [{"at_s": 1, "gpu": 1, "event": "lost"},
                                           {"at_s": 3, "gpu": 1, "event": "recovered"}]}))
    return path


def start(tmp_path: Path, storage: dict[str, Any] | None = None, wait: bool = True) -> LabwallServer:
    config = {"gpu": {"backend": "simulated", "simulated_scenario": str(busy_scenario(tmp_path))},
              "storage": {**FLUSH, **(storage or {})}}
    return LabwallServer(tmp_path, config).start(wait=wait)


@pytest.fixture
def servers() -> Iterator[list[LabwallServer]]:
    running: list[LabwallServer] = []
    yield running
    for server in running:
        server.stop()


def storage_of(server: LabwallServer) -> dict[str, Any]:
    return server.get("/healthz").json()


def wait_degraded(server: LabwallServer, part: str, timeout: float = 20.0) -> dict[str, Any]:
    def degraded() -> dict[str, Any] | None:
        body = storage_of(server)
        found = [r for r in body["reasons"] if r.startswith("storage: ") and part in r]
        return body if body["status"] == "degraded" and found else None

    return wait_for(degraded, timeout, 0.2, what=f"/healthz degraded naming storage ({part})")


def wait_ok(server: LabwallServer, timeout: float = 20.0) -> dict[str, Any]:
    return wait_for(lambda: (b := storage_of(server))["status"] == "ok" and b, timeout, 0.2, what="/healthz ok")


def event_texts(server: LabwallServer) -> list[str]:
    return [e["text"] for e in server.get("/api/events?limit=1000").json()["events"] if e["source"] == "storage"]


def assert_wall_up(server: LabwallServer) -> None:
    assert server.get("/").status_code == 200
    assert server.get("/api/snapshot").json()["gpus"]


@contextlib.contextmanager
def immutable(path: Path) -> Iterator[Callable[[], None]]:
    """Make `path` unwritable even for root (chattr +i); yields the function that lifts it."""
    if ROOT_USER:
        subprocess.run(["chattr", "+i", str(path)], check=True)
        lift = lambda: subprocess.run(["chattr", "-i", str(path)], check=True)  # noqa: E731
    else:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        lift = lambda: path.chmod(mode)  # noqa: E731
    lifted = False

    def release() -> None:
        nonlocal lifted
        if not lifted:
            lift()
            lifted = True

    try:
        yield release
    finally:
        release()


def test_history_api_answers_and_refuses_clearly(servers: list[LabwallServer], tmp_path: Path) -> None:
    server = start(tmp_path)
    servers.append(server)
    now = time.time()
    wait_for(lambda: len(server.get(f"/api/history?series=gpu_utilization_percent&gpu=0&since={now - 1}")
                        .json()["points"]) >= 3, 15, what="three raw points")
    body = server.get(f"/api/history?series=gpu_utilization_percent&gpu=0&since={now - 1}&until={time.time()}").json()
    assert body["series"] == "gpu_utilization_percent" and body["labels"]["gpu"] == "0"
    assert abs(body["step_s"] - 1.0) < 0.05, body["step_s"]  # the median interval of raw 1 s points
    assert all(len(p) == 3 and p[1] == p[2] for p in body["points"])
    cases = {
        "/api/history?series=no_such_series": (404, "no series named 'no_such_series'"),
        "/api/history?series=gpu_utilization_percent&gpu=9": (404, "has the labels"),
        "/api/history?series=gpu_utilization_percent": (400, "add a label to pick one: gpu (0, 1)"),
        "/api/history?series=gpu_utilization_percent&gpu=0&since=yesterday": (400, "'since'"),
        "/api/history?series=gpu_utilization_percent&gpu=0&since=nan": (400, "'since'"),
        "/api/history?series=gpu_utilization_percent&gpu=0&since=200&until=100": (400, "must be before until"),
        "/api/history?series=gpu_utilization_percent&gpu=0&gpu=1": (400, "more than once"),
        "/api/history?series=gpu_utilization_percent&gpu%3D=0": (400, "is not a label name"),
        "/api/history?gpu=0": (400, "'series'"),
    }
    for path, (status, detail) in cases.items():
        answer = server.get(path)
        assert (answer.status_code, detail in answer.json()["detail"]) == (status, True), (path, answer.text)
    assert storage_of(server)["storage"]["state"] == "ok"


def test_storage_disabled_keeps_memory_only(servers: list[LabwallServer], tmp_path: Path) -> None:
    server = start(tmp_path, {"enabled": False})
    servers.append(server)
    assert storage_of(server)["storage"] == {"state": "disabled"}
    assert not (tmp_path / "data").exists()


def test_a_read_only_file_degrades_and_recovers(servers: list[LabwallServer], tmp_path: Path) -> None:
    first = start(tmp_path)
    wait_for(lambda: storage_of(first)["storage"]["rows_written"] > 0, 20, what="a first write")
    first.stop()
    db = tmp_path / "data" / "labwall.db"
    with immutable(db) as release:
        server = start(tmp_path)
        servers.append(server)
        wait_degraded(server, "readonly")
        assert any("running from memory" in t for t in event_texts(server))
        assert_wall_up(server)
        release()
        written = wait_ok(server)["storage"]["rows_written"]
    wait_for(lambda: storage_of(server)["storage"]["rows_written"] > written, 20, what="writes after recovery")
    assert any(t.startswith(f"writing to {db} again") for t in event_texts(server))


def test_a_directory_that_cannot_be_created_degrades_and_recovers(servers: list[LabwallServer],
                                                                  tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    with immutable(blocked) as release:
        server = start(tmp_path, {"path": str(blocked / "sub" / "labwall.db")})
        servers.append(server)
        wait_degraded(server, "cannot open")
        assert_wall_up(server)
        release()
        wait_ok(server)
    assert (blocked / "sub" / "labwall.db").exists()


@pytest.mark.skipif(not ROOT_USER, reason="mounting a small tmpfs needs root")
def test_a_full_disk_degrades_and_recovers(servers: list[LabwallServer], tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "small") as small:
        server = start(tmp_path, {"path": str(small / "labwall.db")})
        servers.append(server)
        wait_for(lambda: storage_of(server)["storage"]["rows_written"] > 0, 20, what="a first write")
        filler = small / "filler.bin"
        fill_until_full(filler)
        wait_degraded(server, "full", timeout=30)
        assert any("full" in t and "running from memory" in t for t in event_texts(server))
        assert_wall_up(server)
        filler.unlink()
        wait_ok(server, timeout=30)
        assert storage_of(server)["storage"]["dropped"] == 0  # the queue held what waited
        server.stop()


def test_a_lock_held_by_another_process_degrades_and_recovers(servers: list[LabwallServer], tmp_path: Path) -> None:
    server = start(tmp_path)
    servers.append(server)
    wait_for(lambda: storage_of(server)["storage"]["rows_written"] > 0, 20, what="a first write")
    other = sqlite3.connect(tmp_path / "data" / "labwall.db", isolation_level=None, timeout=5)
    other.execute("BEGIN EXCLUSIVE")
    try:
        wait_degraded(server, "another process holds the file's write lock")
        assert_wall_up(server)
    finally:
        other.execute("ROLLBACK")
        other.close()
    wait_ok(server)


def test_a_corrupt_file_is_moved_aside_and_writing_goes_on(servers: list[LabwallServer], tmp_path: Path) -> None:
    db = tmp_path / "data" / "labwall.db"
    db.parent.mkdir()
    db.write_bytes(os.urandom(64 * 1024))
    server = start(tmp_path)
    servers.append(server)
    assert [p.name.startswith("labwall.db.corrupt-") for p in db.parent.glob("*.corrupt-*")] == [True]
    assert any("is corrupt" in t and "a new file started" in t for t in event_texts(server))
    wait_for(lambda: storage_of(server)["storage"]["rows_written"] > 0, 20, what="writes to the new file")
    assert storage_of(server)["status"] == "ok"


def test_a_newer_schema_stops_start_up_with_its_reason(tmp_path: Path) -> None:
    db = tmp_path / "data" / "labwall.db"
    db.parent.mkdir()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 7")
    server = start(tmp_path, wait=False)
    assert server.proc is not None and server.proc.wait(60) == 1
    assert "schema version 7, newer than this labwall knows" in server.logs()
