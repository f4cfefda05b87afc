"""A real writer process for the run tests: executes file operations sent as JSON lines on stdin.

Each command is answered with one line, "ok" or "error: ...", once it is done, so the test knows
the bytes are on disk. Files named in "hold" stay open for appending (as a trainer's logger keeps
its file open), which is how the run watcher finds the writing process.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
import time
from typing import Any, BinaryIO

held: dict[str, BinaryIO] = {}
tb_writers: dict[str, Any] = {}


def data(cmd: dict[str, Any]) -> bytes:
    return base64.b64decode(cmd.get("data", ""))


def tfevents(cmd: dict[str, Any]) -> None:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    directory = cmd["dir"]
    writer = tb_writers.get(directory)
    if writer is None:
        os.makedirs(directory, exist_ok=True)
        writer = tb_writers[directory] = EventFileWriter(directory, flush_secs=3600)
    for tag, value, step in cmd["scalars"]:
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
        writer.add_event(event_pb2.Event(summary=summary, step=step, wall_time=time.time()))
    writer.flush()


def handle(cmd: dict[str, Any]) -> None:
    op, path = cmd["op"], cmd.get("path", "")
    if op == "append":
        if path in held:
            held[path].write(data(cmd))
            held[path].flush()
        else:
            with open(path, "ab") as f:
                f.write(data(cmd))
    elif op == "hold":
        held[path] = open(path, "ab")  # noqa: SIM115 - kept open on purpose
    elif op == "write":  # rewrite in place: same inode, truncated first (Lightning, HF trainer_state.json)
        with open(path, "r+b" if os.path.exists(path) else "wb") as f:
            f.truncate(0)
            f.write(data(cmd))
    elif op == "replace":  # a new file renamed over the old one: a new inode
        tmp = path + ".tmp-writer"
        with open(tmp, "wb") as f:
            f.write(data(cmd))
        os.replace(tmp, path)
    elif op == "truncate":
        os.truncate(path, cmd.get("size", 0))
    elif op == "mkdir":
        os.makedirs(path, exist_ok=True)
    elif op == "rmtree":
        shutil.rmtree(path)
    elif op == "remove":
        os.remove(path)
    elif op == "symlink":
        os.symlink(cmd["target"], path)
    elif op == "tfevents":
        tfevents(cmd)
    else:
        raise ValueError(f"unknown op {op!r}")


def main() -> None:
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "exit":
            break
        try:
            handle(cmd)
            reply = "ok"
        except Exception as exc:
            reply = f"error: {type(exc).__name__}: {exc}"
        sys.stdout.write(reply + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
