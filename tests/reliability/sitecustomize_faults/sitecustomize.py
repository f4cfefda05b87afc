"""Fault hooks for the labwall server under test, loaded at interpreter start-up because the
reliability suite puts this directory on that server's PYTHONPATH only (never in production).

SIGUSR2 kills the file-watch observer thread the way a crash would: an exception raised inside that
thread (CPython's PyThreadState_SetAsyncExc), not a polite stop(). The thread sleeps in a queue
wait until a file event arrives, so it dies on its next file event. The server must notice the dead
thread by itself, log it, restart the observer and tail again.
"""

from __future__ import annotations

import ctypes
import signal
import sys
import threading
from types import FrameType


class ObserverKilled(Exception):
    def __str__(self) -> str:
        return "killed by SIGUSR2 (reliability test)"


def kill_observers(signum: int, frame: FrameType | None) -> None:
    if "watchdog.observers.api" not in sys.modules:
        return  # no observer was ever started
    base = sys.modules["watchdog.observers.api"].BaseObserver
    for thread in threading.enumerate():
        if isinstance(thread, base) and thread.ident is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(ObserverKilled))
            print(f"sitecustomize: ObserverKilled raised in thread {thread.name}", file=sys.stderr, flush=True)


signal.signal(signal.SIGUSR2, kill_observers)
