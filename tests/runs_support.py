"""Helpers for the run tests: a real writer process, and the runs collector running in its thread."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from support import wait_for

from collectors.base import CollectorThread
from collectors.runs import RunsCollector
from monitor.config import RunsConfig
from monitor.model.store import Store

WRITER = Path(__file__).resolve().parent / "file_writer.py"


class Writer:
    """A separate process that writes run files on command (the tests never write run files themselves)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WRITER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _do(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline().strip()
        if reply != "ok":
            raise AssertionError(f"writer failed on {cmd.get('op')} {cmd.get('path', '')}: {reply or 'no reply'}")

    @staticmethod
    def _b64(data: str | bytes) -> str:
        return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()

    def append(self, path: Path, data: str | bytes) -> None:
        self._do(op="append", path=str(path), data=self._b64(data))

    def lines(self, path: Path, records: list[dict[str, Any]]) -> None:
        self.append(path, "".join(json.dumps(r) + "\n" for r in records))

    def write(self, path: Path, data: str | bytes) -> None:
        self._do(op="write", path=str(path), data=self._b64(data))

    def replace(self, path: Path, data: str | bytes) -> None:
        self._do(op="replace", path=str(path), data=self._b64(data))

    def truncate(self, path: Path, size: int = 0) -> None:
        self._do(op="truncate", path=str(path), size=size)

    def hold(self, path: Path) -> None:
        self._do(op="hold", path=str(path))

    def mkdir(self, path: Path) -> None:
        self._do(op="mkdir", path=str(path))

    def rmtree(self, path: Path) -> None:
        self._do(op="rmtree", path=str(path))

    def symlink(self, path: Path, target: Path) -> None:
        self._do(op="symlink", path=str(path), target=str(target))

    def scalars(self, directory: Path, scalars: list[tuple[str, float, int]]) -> None:
        self._do(op="tfevents", dir=str(directory), scalars=[list(s) for s in scalars])

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(5)

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)


class Watch:
    """A store and a RunsCollector in its supervised thread, watching `root`."""

    def __init__(self, root: Path, **config: Any) -> None:
        self.root = root
        settings = {"roots": [root], "interval_s": 0.05, "rescan_s": 30.0, **config}
        self.store = Store("test-host")
        self.config = RunsConfig(**settings)
        self.collector = RunsCollector(self.store, self.config)
        self.thread = CollectorThread(self.collector)

    def start(self) -> Watch:
        self.thread.start()
        wait_for(lambda: self.collector.initial_scan_done, timeout=10, what="the first scan of the run roots")
        return self

    def stop(self) -> None:
        self.thread.stop()
        self.thread.join(5)

    # -- reading ---------------------------------------------------------------------------------
    def runs(self) -> list[dict[str, Any]]:
        return self.store.runs.summaries()

    def run(self, name: str) -> dict[str, Any] | None:
        return next((r for r in self.runs() if r["name"] == name), None)

    def wait_run(self, name: str, timeout: float = 10.0, **expected: Any) -> dict[str, Any]:
        """The run's summary once it exists and every `expected` field has that value."""

        def ready() -> dict[str, Any] | None:
            run = self.run(name)
            if run is None or any(run.get(k) != v for k, v in expected.items()):
                return None
            return run

        return wait_for(ready, timeout, what=f"run {name!r} with {expected} (now: {self.run(name)})")

    def points(self, name: str, metric: str) -> list[list[float]]:
        run = self.run(name)
        if run is None:
            return []
        read = self.store.runs.read_metric_after(run["id"], metric, 0)
        return read.points if read else []

    def steps(self, name: str, metric: str) -> list[int]:
        return [int(p[0]) for p in self.points(name, metric)]

    def wait_points(self, name: str, metric: str, count: int, timeout: float = 10.0) -> list[list[float]]:
        return wait_for(lambda: (p := self.points(name, metric)) and len(p) >= count and p, timeout,
                        what=f"{count} points of {name}/{metric} (now {len(self.points(name, metric))})")

    def events(self, source: str = "runs") -> list[str]:
        return [e.text for e in self.store.events.read_after(0) if e.source == source]

    def wait_event(self, text: str, timeout: float = 10.0) -> str:
        return wait_for(lambda: next((e for e in self.events() if text in e), None), timeout,
                        what=f"an event containing {text!r} (events: {self.events()})")

    def source_consumed(self, path: Path) -> bool:
        """The watcher has read every byte of `path` (used to check what a partial line did)."""
        key = self.collector.owner.get(str(path))
        entry = self.collector.sources.get(key) if key else None
        if entry is None:
            return False
        tail = getattr(entry[1], "tail", None)
        return tail is not None and tail.offset == path.stat().st_size
