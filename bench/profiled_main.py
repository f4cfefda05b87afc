"""`main.py` under cProfile (the event loop's thread) for bench/server_profile.py: SIGUSR1 starts a
fresh profile, the next SIGUSR1 writes it to $LABWALL_PROFILE_OUT with the threads' native ids
and names ($LABWALL_PROFILE_OUT.threads.json). Same command line as main.py."""

from __future__ import annotations

import cProfile
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import main

OUT = Path(os.environ["LABWALL_PROFILE_OUT"])
profile: cProfile.Profile | None = None


def toggle(_signum: int, _frame: Any) -> None:
    global profile
    if profile is None:
        profile = cProfile.Profile()
        profile.enable()
        return
    profile.disable()
    profile.dump_stats(OUT)
    threads = {t.native_id: t.name for t in threading.enumerate()}
    Path(f"{OUT}.threads.json").write_text(json.dumps(threads))
    profile = None


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, toggle)
    sys.exit(main.main(sys.argv[1:]))
