"""`main.py` with events whose texts come from LABWALL_TEST_EVENTS (a JSON list), for the XSS test
(tests/reliability/test_security.py).

The event log has no outside source a test can drive yet (the simulated GPU scenario's "events"
are GPU lost/recovered timings, not text), so this harness adds them to the store: the first half
when the collectors start (the page's first render shows them), the rest when the test posts to
/test/more-events while the page is open (the streaming path). Everything else is the real entry
point; the extra route exists only in this harness.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from nicegui import app

import main
from monitor.app import Monitor

TEXTS: list[str] = json.loads(os.environ.get("LABWALL_TEST_EVENTS", "[]"))
HALF = len(TEXTS) // 2
_start = Monitor.start
_started: list[Monitor] = []


def start_with_events(self: Monitor) -> None:
    _start(self)
    _started.append(self)
    for text in TEXTS[:HALF]:
        self.store.events.add("warning", "test", text)


@app.post("/test/more-events")
def more_events() -> dict[str, int]:
    for text in TEXTS[HALF:]:
        _started[0].store.events.add("error", "test", text)
    return {"added": len(TEXTS) - HALF}


Monitor.start = start_with_events  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main.main())
