"""A real process for the run-join tests: a trainer that holds a run file open, or a launcher of one.

    python tests/join_child.py [ARG...]      or, as a launcher is started:  python -m join_child [ARG...]

Arguments are not read: they are there for the join to find in the command line (--output_dir ...).
Environment:
    JOIN_HOLD=FILE       open FILE for appending, write one metrics line, keep it open (as a logger does)
    JOIN_SPAWN=1         also start one child (this program), whose environment is the JOIN_CHILD_*
                         variables renamed to JOIN_* and whose working directory is JOIN_CHILD_CWD
Prints "ready PID [CHILD_PID]" once set up, then waits; exits (child too) when its stdin closes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

if __name__ == "__main__":
    held = None
    if os.environ.get("JOIN_HOLD"):
        held = open(os.environ["JOIN_HOLD"], "a")  # noqa: SIM115 - kept open on purpose
        held.write(json.dumps({"step": 1, "loss": 2.5}) + "\n")
        held.flush()
    child = None
    if os.environ.get("JOIN_SPAWN"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOIN_")}
        env.update({"JOIN_" + k[len("JOIN_CHILD_"):]: v for k, v in os.environ.items() if k.startswith("JOIN_CHILD_")})
        env.pop("JOIN_CWD", None)
        child = subprocess.Popen([sys.executable, os.path.abspath(__file__)], env=env, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True, cwd=os.environ.get("JOIN_CHILD_CWD"))
        assert child.stdout is not None
        child.stdout.readline()
    print("ready", os.getpid(), *([child.pid] if child else []), flush=True)
    sys.stdin.read()
    if child is not None:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(5)
