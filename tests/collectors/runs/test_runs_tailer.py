"""FileTail on its own: complete lines only, identity and offset, rewrites, overlong lines, tqdm's \\r."""

from __future__ import annotations

import os
from pathlib import Path

from collectors.runs.tailer import FileTail, NotARegularFile, WholeFile


def lines(tail: FileTail) -> list[tuple[int, bytes]]:
    chunk = tail.poll()
    return chunk.lines if chunk else []


def test_only_complete_lines_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b"a\r\nb\npart")
    tail = FileTail(str(path))
    assert lines(tail) == [(1, b"a"), (2, b"b")]
    assert tail.poll() is None  # unchanged
    with path.open("ab") as f:
        f.write(b"ial\r")
    assert lines(tail) == []
    with path.open("ab") as f:
        f.write(b"\nnext\n")
    assert lines(tail) == [(3, b"partial"), (4, b"next")]


def test_truncation_replacement_and_in_place_rewrite_restart_from_the_top(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(b"step,loss\n1,2\n")
    tail = FileTail(str(path))
    lines(tail)
    path.write_bytes(b"step,loss,val\n1,2,\n2,1,\n")  # same inode, longer: only the anchors show it
    chunk = tail.poll()
    assert chunk is not None and chunk.reset == "rewritten" and chunk.lines[0] == (1, b"step,loss,val")
    os.truncate(path, 0)
    with path.open("ab") as f:
        f.write(b"x\n")
    chunk = tail.poll()
    assert chunk is not None and chunk.reset == "truncated" and chunk.lines == [(1, b"x")]
    other = tmp_path / "new"
    other.write_bytes(b"y\n")
    os.replace(other, path)
    chunk = tail.poll()
    assert chunk is not None and chunk.reset == "replaced" and chunk.lines == [(1, b"y")]


def test_overlong_line_is_dropped_without_holding_it(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b"ok\n" + b"x" * 5000)
    tail = FileTail(str(path), max_line_bytes=1024, chunk_bytes=2048)
    seen = []
    while True:
        chunk = tail.poll()
        if chunk is None:
            break
        seen += chunk.lines
        assert len(tail.pending) <= 1024
    with path.open("ab") as f:
        f.write(b"x" * 3000 + b"\nafter\n")
    chunk = tail.poll()
    while chunk is not None and chunk.more:
        seen += chunk.lines
        chunk = tail.poll()
    assert chunk is not None
    seen += chunk.lines
    assert seen == [(1, b"ok"), (3, b"after")]


def test_tqdm_redraws_are_lines_and_the_newest_bar_is_read_now(tmp_path: Path) -> None:
    path = tmp_path / "train.log"
    path.write_bytes(b" 1%|| 1/100 [00:01<01:39, 1.0it/s]\r 2%|| 2/100 [00:02<01:38, 1.0it/s]")
    tail = FileTail(str(path), split_cr=True)
    assert [n for n, _ in lines(tail)] == [1, 1]
    assert tail.pending == b""


def test_unterminated_last_line_can_be_taken(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2')
    tail = FileTail(str(path))
    assert lines(tail) == [(1, b'{"a": 1}')]
    assert tail.take_unterminated() == (2, b'{"a": 2')
    assert tail.take_unterminated() is None


def test_fifo_is_never_opened_for_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "train.log"
    os.mkfifo(fifo)
    try:
        FileTail(str(fifo)).poll()
        raise AssertionError("a FIFO was read")
    except NotARegularFile:
        pass


def test_whole_file_is_read_again_only_when_changed_or_retried(tmp_path: Path) -> None:
    path = tmp_path / "trainer_state.json"
    path.write_text('{"a": ')
    whole = WholeFile(str(path))
    assert whole.read_if_changed() is not None
    assert whole.read_if_changed() is None  # unchanged
    whole.retry()
    assert whole.read_if_changed() is not None  # retried although unchanged
    whole.accept()
    path.write_text('{"a": 1}')
    read = whole.read_if_changed()
    assert read is not None and read[0] == b'{"a": 1}'


def test_blocks_hand_over_the_same_lines(tmp_path: Path) -> None:
    """blocks=True (JSONL): plain lines come as one block; every line keeps its number, and partial,
    overlong and CRLF lines are handled as without blocks."""
    from collectors.runs.parsed import numbered_lines

    writes = [b"a\nb\npart", b"ial\n", b"", b"c\n" + b"x" * 1500, b"x" * 700 + b"\nd\ne\r\nf\n", b"g" * 900 + b"\nh\n"]
    seen: dict[bool, list[tuple[int, bytes]]] = {}
    blocks = 0
    for use_blocks in (False, True):
        path = tmp_path / f"m{use_blocks}.jsonl"
        path.write_bytes(b"")
        tail = FileTail(str(path), max_line_bytes=1024, chunk_bytes=4096, blocks=use_blocks)
        got: list[tuple[int, bytes]] = []
        for data in writes:
            with path.open("ab") as f:
                f.write(data)
            while (chunk := tail.poll()) is not None:
                got += chunk.lines
                if chunk.block_lines:
                    blocks += 1
                    got += numbered_lines(chunk.first_line, chunk.block)
                    assert chunk.block_lines == len(numbered_lines(chunk.first_line, chunk.block))
                if not chunk.more:
                    break
        seen[use_blocks] = got
    assert seen[True] == seen[False] == [(1, b"a"), (2, b"b"), (3, b"partial"), (4, b"c"), (6, b"d"), (7, b"e"),
                                         (8, b"f"), (9, b"g" * 900), (10, b"h")]
    assert blocks >= 2
