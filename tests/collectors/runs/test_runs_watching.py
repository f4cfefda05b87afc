"""Discovery and watching: new runs at any depth, deletion, NFS-like rescan-only mode, a supervised
observer (handler exceptions, a dead observer thread), symlink loops and unreadable directories."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from runs_support import Watch, Writer
from support import wait_for

from collectors.runs import discovery

StartWatch = Callable[..., Watch]


def line(step: int, loss: float = 1.0) -> str:
    return json.dumps({"step": step, "loss": loss}) + "\n"


def test_new_run_at_depth_is_found_promptly_and_announced(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()  # rescan_s is 30 s: only file events can find it this fast
    deep = root / "team" / "alice" / "exp7"
    writer.mkdir(deep)
    writer.append(deep / "metrics.jsonl", line(0))
    w.wait_run("team/alice/exp7", timeout=3)
    w.wait_event("run started: team/alice/exp7 (jsonl)", timeout=3)


def test_runs_below_max_depth_are_not_walked(root: Path, writer: Writer, watch: StartWatch) -> None:
    writer.mkdir(root / "a" / "b" / "c")
    writer.append(root / "a" / "b" / "c" / "metrics.jsonl", line(0))
    writer.append(root / "a" / "metrics.jsonl", line(0))
    w = watch(max_depth=2)
    w.wait_run("a")
    assert w.run("a/b/c") is None


def test_deleted_run_stays_greyed_then_is_forgotten(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch(forget_after_s=1.0)
    writer.mkdir(root / "gone")
    writer.append(root / "gone" / "metrics.jsonl", line(0) + line(1))
    run = w.wait_run("gone", step=1)
    writer.rmtree(root / "gone")
    summary = w.wait_run("gone", status="deleted", timeout=5)
    assert summary["deleted"] is True and summary["deleted_at"] and summary["id"] == run["id"]
    assert w.points("gone", "loss")  # still readable while greyed
    w.wait_event("run gone deleted")
    wait_for(lambda: w.run("gone") is None, timeout=5, what="the deleted run forgotten after forget_after_s")
    assert run["id"] in w.store.runs.changed_after(0).removed


def test_nfs_like_rescan_only_mode(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch(use_events=False, rescan_s=0.5)
    assert w.collector.watcher is None
    assert w.collector.health.snapshot()["watch"] == {"events": "off (runs.use_events: false)"}
    writer.mkdir(root / "nfs")
    writer.append(root / "nfs" / "metrics.jsonl", line(0))
    w.wait_run("nfs", timeout=5)
    writer.append(root / "nfs" / "metrics.jsonl", line(1) + line(2))
    assert w.wait_points("nfs", "loss", 3, timeout=5)
    writer.rmtree(root / "nfs")
    w.wait_run("nfs", status="deleted", timeout=5)


def test_exception_in_the_event_handler_is_logged_and_watching_goes_on(
    root: Path, writer: Writer, watch: StartWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = watch()  # rescan_s is 30 s: only the rescan the failure asks for can find the run this fast
    watcher = w.collector.watcher
    assert watcher is not None
    original = watcher.note
    failing = {"on": True, "calls": 0}

    def broken(event: object) -> None:
        if failing["on"]:
            failing["calls"] += 1
            raise RuntimeError("handler bug")
        original(event)  # type: ignore[arg-type]

    monkeypatch.setattr(watcher, "note", broken)
    writer.mkdir(root / "h")
    writer.append(root / "h" / "metrics.jsonl", line(0))
    w.wait_event("file-watch handler failed (RuntimeError: handler bug); rescanning")
    wait_for(lambda: failing["calls"] >= 1, what="the failing handler called")
    failing["on"] = False  # every event about the new run was lost
    w.wait_run("h", timeout=5)  # found by the rescan the failure asked for
    assert watcher.observer is not None and watcher.observer.is_alive()
    writer.append(root / "h" / "metrics.jsonl", line(1))
    w.wait_points("h", "loss", 2, timeout=3)
    assert w.collector.health.snapshot()["watch"]["handler_errors"] >= 1


def test_dead_observer_thread_is_restarted_and_logged(root: Path, writer: Writer, watch: StartWatch) -> None:
    w = watch()
    watcher = w.collector.watcher
    assert watcher is not None and watcher.observer is not None
    first = watcher.observer
    handler = watcher._handler
    original = handler.dispatch
    state = {"raised": False}

    def dispatch_once_broken(event: object) -> None:
        if not state["raised"]:
            state["raised"] = True
            raise RuntimeError("observer killed")  # outside the handler's own guard: the thread dies
        original(event)  # type: ignore[arg-type]

    handler.dispatch = dispatch_once_broken  # type: ignore[method-assign]
    writer.mkdir(root / "after")
    w.wait_event("file watcher stopped (RuntimeError: observer killed); restarted, rescanning")
    assert not first.is_alive()
    wait_for(lambda: watcher.observer is not None and watcher.observer.is_alive(), what="a new observer")
    writer.append(root / "after" / "metrics.jsonl", line(0))
    w.wait_run("after", timeout=5)
    writer.append(root / "after" / "metrics.jsonl", line(1))
    w.wait_points("after", "loss", 2, timeout=3)
    assert w.collector.health.snapshot()["watch"]["observer_restarts"] == 1


def test_symlink_loop_and_unreadable_directory_are_reported_not_fatal(
    root: Path, writer: Writer, watch: StartWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer.mkdir(root / "a" / "run1")
    writer.append(root / "a" / "run1" / "metrics.jsonl", line(0))
    writer.symlink(root / "a" / "loop", root / "a")  # a/loop -> a: walking it would never end
    writer.mkdir(root / "secret" / "run2")
    writer.append(root / "secret" / "run2" / "metrics.jsonl", line(0))
    writer.mkdir(root / "b")
    writer.append(root / "b" / "metrics.jsonl", line(0))
    unreadable = str(root / "secret")

    class OsWithUnreadableDir:  # tests run as root, where chmod 000 does not stop reading
        def __getattr__(self, name: str) -> object:
            return getattr(os, name)

        @staticmethod
        def scandir(path: str) -> object:
            if str(path) == unreadable:
                raise PermissionError(13, "Permission denied", path)
            return os.scandir(path)

    monkeypatch.setattr(discovery, "os", OsWithUnreadableDir())  # discovery's view only, not watchdog's
    w = watch()
    w.wait_run("a/run1")
    w.wait_run("b")
    problems = w.collector.health.snapshot()["problems"]
    assert any(p.startswith(str(root / "a" / "loop")) and "symlink loop" in p for p in problems)
    assert f"{unreadable}: permission denied: skipped" in problems
    w.wait_event(f"run discovery skipped {unreadable}: permission denied")
    assert w.collector.health.snapshot()["state"] == "ok"
    assert {r["name"] for r in w.runs()} == {"a/run1", "b"}


def test_missing_root_is_reported_as_degraded(tmp_path: Path) -> None:
    w = Watch(tmp_path / "not-there", rescan_s=0.5).start()
    try:
        health = w.collector.health.snapshot()
        assert health["degraded"].startswith("run root missing: ")
        assert health["state"] == "ok"
    finally:
        w.stop()
