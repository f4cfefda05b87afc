"""Helpers for the durable storage tests: a store with a durable journal on a real file."""

from __future__ import annotations

from pathlib import Path

from monitor.model.samples import Sample, make_labels
from monitor.model.storage import DurableStore, StorageSettings
from monitor.model.store import Store

T0 = 1_790_000_000.0 - (1_790_000_000.0 % 3600)  # a whole hour


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def durable(path: Path, clock: Clock | None = None, **settings: float) -> tuple[Store, DurableStore]:
    store = Store("h1", window_s=600)
    storage = DurableStore(store, StorageSettings(path=path, **settings), clock=clock or Clock())  # type: ignore[arg-type]
    storage.open_and_restore()
    return store, storage


def feed(store: Store, name: str, start: float, seconds: int, value: float = 50.0, gpu: int = 0) -> None:
    """One sample a second for `seconds` seconds (value, value + 10 on odd seconds)."""
    labels = make_labels(host="h1", gpu=gpu)
    for i in range(seconds):
        store.append([Sample(name, labels, start + i, value + (10 if i % 2 else 0))], 1.0)
