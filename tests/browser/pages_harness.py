"""`main.py` whose runs get hyperparameters from LABWALL_TEST_PARAMS (a JSON object: run name ->
params), for the page tests: reading hparams files is not wired yet, so this harness sets them
through the registry's own setter, as that reader will. Everything else is the real entry point."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import main
from monitor.app import Monitor

PARAMS: dict[str, dict] = json.loads(os.environ.get("LABWALL_TEST_PARAMS", "{}"))
_start = Monitor.start


def start_with_params(self: Monitor) -> None:
    _start(self)
    registry = self.store.runs

    def apply() -> None:
        while True:
            for summary in registry.summaries():
                if summary["name"] in PARAMS:
                    registry.set_params(summary["id"], PARAMS[summary["name"]])
            threading.Event().wait(0.2)

    threading.Thread(target=apply, daemon=True, name="test params").start()


Monitor.start = start_with_params  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main.main())
