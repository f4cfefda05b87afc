"""Helpers for tests/reliability/test_faults.py: a labwall server that may run as another user, what
/healthz and the event log say (with the server's own timestamps), the wall page's liveness, real
child processes, and a real small filesystem to fill.

Recovery is measured against the server's clock (event and /healthz times); the test and the server
share this machine's wall clock, so a fault the test clears at `time.time()` is comparable.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from playwright.sync_api import Page
from support import ROOT, LabwallServer, wait_for

NOBODY = 65534
RELIABILITY = Path(__file__).resolve().parent
FAULT_HOOKS = RELIABILITY / "sitecustomize_faults"  # SIGUSR2 kills the file-watch observer thread
JOIN_CHILD = ROOT / "tests" / "join_child.py"
RECOVERY_LIMIT_S = 10.0


class FaultServer(LabwallServer):
    """`main.py` as a subprocess with the fault hooks loaded, as `uid` (when root) or as this user.

    `spawned_at` (before the process exists) is a lower bound of when its simulated GPU clock started."""

    def __init__(self, workdir: Path, config: dict[str, Any], uid: int | None = None) -> None:
        env = {"PYTHONPATH": os.pathsep.join([str(FAULT_HOOKS), *filter(None, [os.environ.get("PYTHONPATH")])]),
               "HOME": str(workdir)}
        super().__init__(workdir, config, env=env)
        self.uid = uid
        self.spawned_at = 0.0

    def start(self, wait: bool = True) -> FaultServer:
        as_user = ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups"]
        prefix = as_user if self.uid is not None else []
        log = self.log_path.open("ab")
        self.spawned_at = time.time()
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, str(ROOT / "main.py"), "--config", str(self.config_path)],
            cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, env=self.env,
        )
        if wait:
            self.wait_ready()
        return self

    # -- what the server says ----------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return self.get("/healthz").json()

    def wait_health(self, condition: Callable[[dict[str, Any]], Any], timeout: float, what: str) -> dict[str, Any]:
        """The first /healthz answer (its `time` is the server's clock) for which `condition` holds."""
        found: list[dict[str, Any]] = []

        def check() -> bool:
            body = self.health()
            if condition(body):
                found.append(body)
                return True
            return False

        wait_for(check, timeout, 0.05, what=f"{what} (log: {self.log_path})")
        return found[0]

    def events(self, after: int = 0) -> list[dict[str, Any]]:
        return self.get(f"/api/events?after={after}&limit=1000").json()["events"]

    def event_cursor(self) -> int:
        return int(self.get("/api/events?after=0&limit=1").json()["cursor"])

    def wait_event(self, text: str, timeout: float, after: int = 0) -> dict[str, Any]:
        """The first event after sequence `after` whose text contains `text`."""
        return wait_for(lambda: next((e for e in self.events(after) if text in e["text"]), None), timeout, 0.1,
                        what=f"event containing {text!r} (log: {self.log_path})")

    def run_named(self, name: str) -> dict[str, Any] | None:
        return next((r for r in self.get("/api/runs").json() if r["name"] == name), None)


def reasons(body: dict[str, Any], part: str) -> list[str]:
    """The /healthz reasons about one part (a collector name such as "gpu" or "runs")."""
    return [r for r in body.get("reasons", []) if r.startswith(f"{part}: ")]


def assert_recovered_in_time(what: str, seconds: float) -> None:
    assert seconds <= RECOVERY_LIMIT_S, f"{what}: recovered {seconds:.2f} s after the fault cleared (limit 10 s)"
    print(f"recovery: {what}: {seconds:.2f} s")  # shown with pytest -s; the figures of the report


# -- the wall page ---------------------------------------------------------------------------------
class WallWatch:
    """Tells whether an open wall page is still the same live page: a mark set in its window survives
    only if the page never reloaded, and its clock must keep moving."""

    MARK = "labwallFaultsMark"

    def __init__(self, page: Page) -> None:
        self.page = page
        self.navigations = 0
        page.on("framenavigated", self._navigated)
        page.evaluate(f"() => {{ window.{self.MARK} = 'set' }}")

    def _navigated(self, frame: Any) -> None:
        if frame == self.page.main_frame:
            self.navigations += 1

    def assert_streaming(self, timeout: float = 10.0) -> None:
        assert self.page.evaluate(f"() => window.{self.MARK}") == "set", "the wall page reloaded"
        assert self.navigations == 0, f"the wall page navigated {self.navigations} times"
        first = self.page.text_content(".clock")
        self.page.wait_for_function("(t) => document.querySelector('.clock')?.textContent !== t", arg=first,
                                    timeout=timeout * 1000)

    def wait_text(self, selector: str, text: str, timeout: float = 15.0) -> None:
        """Until a visible element matching `selector` contains `text`."""
        self.page.wait_for_function(
            "([sel, text]) => [...document.querySelectorAll(sel)].some("
            "e => e.checkVisibility() && e.textContent.includes(text))",
            arg=[selector, text], timeout=timeout * 1000)

    def wait_gone(self, selector: str, text: str, timeout: float = 15.0) -> None:
        """Until no visible element matching `selector` contains `text`."""
        self.page.wait_for_function(
            "([sel, text]) => ![...document.querySelectorAll(sel)].some("
            "e => e.checkVisibility() && e.textContent.includes(text))",
            arg=[selector, text], timeout=timeout * 1000)

    def wait_count(self, selector: str, text: str, count: int, timeout: float = 15.0) -> None:
        """Until exactly `count` visible elements matching `selector` have the text `text`."""
        self.page.wait_for_function(
            "([sel, text, n]) => [...document.querySelectorAll(sel)].filter("
            "e => e.checkVisibility() && e.textContent === text).length === n",
            arg=[selector, text, count], timeout=timeout * 1000)

    def count_text(self, selector: str, text: str) -> int:
        return int(self.page.evaluate(
            "([sel, text]) => [...document.querySelectorAll(sel)].filter("
            "e => e.checkVisibility() && e.textContent.includes(text)).length", [selector, text]))

    def wait_disk_row(self, path: Path, condition: str, timeout: float = 10.0) -> None:
        """Until the host panel's visible disk row for `path` meets `condition`, a JS expression on
        `row` = {text, cls} of its value cell."""
        self.page.wait_for_function(
            "(p) => { const r = [...document.querySelectorAll('.wall .disk')].find("
            "d => d.checkVisibility() && d.querySelector('.d-path')?.textContent === p);"
            " const v = r?.querySelector('.d-v'); if (!v) return false;"
            f" const row = {{text: v.textContent, cls: v.className}}; return {condition} }}",
            arg=str(path), timeout=timeout * 1000)


# -- the world around the server -------------------------------------------------------------------
@contextlib.contextmanager
def shared_dir(prefix: str) -> Iterator[Path]:
    """A directory every user may enter and write (a server running as nobody reads its files)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def open_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
    return path


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "4m") -> Iterator[Path]:
    """A real tmpfs of `size` mounted at `path` (needs root, as in CI), unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, f"cannot mount a tmpfs at {path} (root needed): {result.stderr.strip()}"
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill_until_full(path: Path) -> int:
    """Write zeros into `path` until the filesystem says ENOSPC; returns the bytes written."""
    written = 0
    chunk = b"\0" * 65536
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while True:
            written += os.write(fd, chunk)
    except OSError as exc:
        assert exc.errno == 28, f"filling {path} failed with {exc!r}, not ENOSPC"
    finally:
        os.close(fd)
    return written


def append_lines(path: Path, lines: list[dict[str, Any]]) -> None:
    with path.open("a") as f:
        f.write("".join(json.dumps(line) + "\n" for line in lines))


def write_until_enospc(path: Path, first_step: int) -> tuple[int, bool]:
    """Append 1 KiB lines as a logger does (one write each) until the disk is full; (next step, failed)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        for step in range(first_step, first_step + 64):
            line = (json.dumps({"step": step, "loss": 1.0 / step, "note": "x" * 1000}) + "\n").encode()
            try:
                if os.write(fd, line) < len(line):
                    return step + 1, True  # cut short: the rest of this line is lost, as with a real logger
            except OSError as exc:
                assert exc.errno == 28, exc
                return step + 1, True
    finally:
        os.close(fd)
    return first_step + 64, False


def wait_step(server: FaultServer, name: str, step: int, timeout: float = 10.0) -> dict[str, Any]:
    return wait_for(lambda: (r := server.run_named(name)) and (r["step"] or 0) >= step and r, timeout, 0.05,
                    what=f"run {name} at step {step} in /api/runs")


class Child:
    """A real process (tests/join_child.py) that stays until it is stopped or killed."""

    def __init__(self, *args: str, cwd: Path | None = None, **env: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(JOIN_CHILD), *args], cwd=cwd,
                                     env={**os.environ, **env}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        assert line[:1] == ["ready"], f"child did not start: {line}"
        self.pid = int(line[1])

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill()
