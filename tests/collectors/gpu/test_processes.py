"""pid → (user, redacted command): real child processes, the per-(pid, create_time) cache, failures."""

from __future__ import annotations

import contextlib
import os
import pwd
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import psutil
import pytest

import collectors.gpu.processes as processes_module
from collectors.gpu.processes import UNKNOWN, ProcessInfo, ProcessLookup
from collectors.gpu.redact import Redactor

ME = pwd.getpwuid(os.getuid()).pw_name


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.01)


def _cmdline(pid: int) -> list[str]:
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []


@pytest.fixture
def secret_child() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "--token", "supersecret"])
    try:
        # Until exec completes the child still shows our own command line; wait for its own.
        wait_until(lambda: "supersecret" in _cmdline(child.pid))
        yield child
    finally:
        child.kill()
        child.wait(timeout=10)


@pytest.fixture
def no_process_iter(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("process_iter scans every process; the lookup must not call it")

    monkeypatch.setattr(psutil, "process_iter", forbidden)
    monkeypatch.setattr(psutil, "pids", forbidden)


def test_real_child_command_is_redacted_with_right_user(
    secret_child: subprocess.Popen[bytes], no_process_iter: None
) -> None:
    info = ProcessLookup(Redactor()).lookup(secret_child.pid)
    assert info.user == ME
    assert info.command is not None
    assert "supersecret" not in info.command
    assert info.command.endswith("--token ***")
    assert "time.sleep(30)" in info.command
    assert info.command.startswith(sys.executable)


def test_lookup_is_cached_per_pid_and_create_time(secret_child: subprocess.Popen[bytes]) -> None:
    lookup = ProcessLookup(Redactor())
    first = lookup.lookup(secret_child.pid)
    second = lookup.lookup(secret_child.pid)
    assert second is first
    assert (lookup.misses, lookup.hits) == (1, 1)


def test_dead_process_is_unknown_and_does_not_raise() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=10)
    assert ProcessLookup().lookup(child.pid) == UNKNOWN


def test_pid_beyond_pid_max_is_unknown() -> None:
    assert ProcessLookup().lookup(2**31 - 1) == UNKNOWN


class FakeProcess:
    """Stands in for psutil.Process; class attributes are the test's knobs."""

    create: float = 1.0
    user: str | BaseException = "alice"
    argv: ClassVar[list[str] | BaseException] = ["python", "train.py", "--api-key", "k-1"]
    missing: bool = False
    reads = 0

    def __init__(self, pid: int) -> None:
        if FakeProcess.missing:
            raise psutil.NoSuchProcess(pid)
        self.pid = pid

    def create_time(self) -> float:
        return FakeProcess.create

    def oneshot(self) -> Any:
        return contextlib.nullcontext()

    def username(self) -> str:
        FakeProcess.reads += 1
        if isinstance(FakeProcess.user, BaseException):
            raise FakeProcess.user
        return FakeProcess.user

    def cmdline(self) -> list[str]:
        if isinstance(FakeProcess.argv, BaseException):
            raise FakeProcess.argv
        return FakeProcess.argv

    def name(self) -> str:
        return "kworker/0:1"


@pytest.fixture
def fake_process(monkeypatch: pytest.MonkeyPatch) -> type[FakeProcess]:
    monkeypatch.setattr(processes_module.psutil, "Process", FakeProcess)
    monkeypatch.setattr(FakeProcess, "create", 1.0)
    monkeypatch.setattr(FakeProcess, "user", "alice")
    monkeypatch.setattr(FakeProcess, "argv", ["python", "train.py", "--api-key", "k-1"])
    monkeypatch.setattr(FakeProcess, "missing", False)
    monkeypatch.setattr(FakeProcess, "reads", 0)
    return FakeProcess


def test_reused_pid_is_read_again(fake_process: type[FakeProcess]) -> None:
    lookup = ProcessLookup(Redactor())
    assert lookup.lookup(77) == ProcessInfo("alice", "python train.py --api-key ***")
    fake_process.create, fake_process.user, fake_process.argv = 2.0, "bob", ["sleep", "9"]
    assert lookup.lookup(77) == ProcessInfo("bob", "sleep 9")
    assert fake_process.reads == 2


@pytest.mark.parametrize(
    "error", [psutil.AccessDenied(5), psutil.ZombieProcess(5), psutil.NoSuchProcess(5)], ids=type
)
def test_hidden_command_is_none_but_user_kept(fake_process: type[FakeProcess], error: BaseException) -> None:
    fake_process.argv = error
    assert ProcessLookup().lookup(5) == ProcessInfo("alice", None)


def test_hidden_user_is_none_but_command_kept(fake_process: type[FakeProcess]) -> None:
    fake_process.user = psutil.AccessDenied(5)
    assert ProcessLookup().lookup(5) == ProcessInfo(None, "python train.py --api-key ***")


def test_vanished_process_is_unknown(fake_process: type[FakeProcess]) -> None:
    fake_process.missing = True
    assert ProcessLookup().lookup(5) == UNKNOWN


def test_kernel_thread_shows_its_name(fake_process: type[FakeProcess]) -> None:
    fake_process.argv = []
    assert ProcessLookup().lookup(5).command == "[kworker/0:1]"


def test_cache_is_bounded(fake_process: type[FakeProcess]) -> None:
    lookup = ProcessLookup(max_entries=2)
    for pid in (1, 2, 3):
        lookup.lookup(pid)
    assert lookup.cache_size() == 2


def test_truncation_happens_after_redaction(fake_process: type[FakeProcess]) -> None:
    fake_process.argv = ["x" * 30, "--token", "abcdefghijklmnopqrstuvwxyz"]
    command = ProcessLookup(max_command_chars=40).lookup(5).command
    assert command is not None and len(command) <= 40
    assert "abc" not in command


def test_resolver_answers_first_and_its_commands_are_redacted(fake_process: type[FakeProcess]) -> None:
    def resolver(pid: int) -> ProcessInfo | None:
        return ProcessInfo("<b>eve</b>", "python x.py --password hunter2") if pid == 9 else None

    lookup = ProcessLookup(Redactor(), resolver)
    assert lookup.lookup(9) == ProcessInfo("<b>eve</b>", "python x.py --password ***")
    # None from the resolver falls back to the operating system.
    assert lookup.lookup(10) == ProcessInfo("alice", "python train.py --api-key ***")
