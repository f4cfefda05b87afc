from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from runs_support import Watch, Writer


@pytest.fixture
def writer() -> Iterator[Writer]:
    w = Writer()
    yield w
    w.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "runs"
    path.mkdir()
    return path


@pytest.fixture
def watch(root: Path) -> Iterator[Callable[..., Watch]]:
    """Factory: `watch(**runs_config)` starts a RunsCollector on `root`; stopped at teardown."""
    started: list[Watch] = []

    def start(**config: Any) -> Watch:
        w = Watch(root, **config).start()
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


RUNS_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # watchdog warns when a new directory's watch races its recursive set-up (harmless; filtered in the server too).
    for item in items:
        if RUNS_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning"))
