"""Follow a growing file by identity (device, inode) and offset, and read whole files that are rewritten.

`FileTail.poll()` returns only complete new lines; a partial last line waits for its newline. A
file that was replaced (new inode), truncated (shorter than what was read) or rewritten in place
(its first bytes or the last byte read changed, e.g. Lightning rewriting metrics.csv with a new
header) is read again from the start and the chunk says so (`reset`), so the caller can merge by
step instead of duplicating points. A line longer than `max_line_bytes` is skipped without ever
being held in memory beyond that limit, and reported. A tail made with `blocks=True` hands plain
complete lines (no \r, none too long) over as one `block` of bytes (the lines joined by \n) with
the number of its first line, instead of a list of numbered lines: what a reader that parses a whole
batch at once (JSONL) wants, without a Python object per line.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field

HEAD_BYTES = 256
OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def _complete_bar(pending: bytes) -> bool:
    """A whole tqdm bar is waiting for its next redraw (which may take minutes): read it now."""
    return pending.endswith(b"]") and b"%|" in pending and b"/" in pending


class NotARegularFile(OSError):
    """A FIFO, socket or device where a log file was expected: never read (it could block)."""


@dataclass(slots=True)
class TailChunk:
    lines: list[tuple[int, bytes]]  # (1-based line number, line without its terminator)
    reset: str | None = None  # "replaced" | "truncated" | "rewritten": read again from the start
    overlong: list[int] = field(default_factory=list)  # numbers of lines skipped for being too long
    more: bool = False  # unread bytes remain: poll again soon
    mtime: float = 0.0
    size: int = 0
    block: bytes = b""  # blocks=True: the complete lines joined by \n (then `lines` is empty)...
    first_line: int = 0  # ...the number of its first line...
    block_lines: int = 0  # ...and how many lines it holds


def _open_regular(path: str) -> tuple[int, os.stat_result]:
    fd = os.open(path, OPEN_FLAGS)
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotARegularFile(f"{path} is not a regular file")
    return fd, st


class FileTail:
    """Reads the complete lines appended to one file since the last poll."""

    def __init__(self, path: str, max_line_bytes: int = 1 << 20, chunk_bytes: int = 4 << 20,
                 split_cr: bool = False, blocks: bool = False) -> None:
        self.path = path
        self.blocks = blocks and not split_cr
        self.max_line_bytes = max_line_bytes
        self.chunk_bytes = chunk_bytes
        self.split_cr = split_cr  # text logs: a bare \r (tqdm's redraw) also ends a line
        self.identity: tuple[int, int] | None = None
        self.offset = 0  # bytes consumed, including the pending partial line
        self.size = -1
        self.mtime_ns = -1
        self.lines_done = 0  # complete lines consumed
        self._pending = b""
        self.pending_since = 0.0  # when the partial last line last changed (time.time())
        self._discarding = False  # inside an overlong line: skip to its newline
        self._head = b""
        self._last_byte = b""

    @property
    def pending(self) -> bytes:
        """The partial last line read so far (no newline yet)."""
        return self._pending

    def _restart(self) -> None:
        self.offset = 0
        self.lines_done = 0
        self._pending = b""
        self._discarding = False
        self._head = b""
        self._last_byte = b""

    def _anchors_hold(self, fd: int) -> bool:
        """The bytes already read are still there: the first bytes and the last byte read."""
        if self._head and os.pread(fd, len(self._head), 0) != self._head:
            return False
        return not self._last_byte or os.pread(fd, 1, self.offset - 1) == self._last_byte

    def poll(self) -> TailChunk | None:
        """New complete lines, or None when the file has not changed. Raises OSError when it cannot be read."""
        fd, st = _open_regular(self.path)
        try:
            identity = (st.st_dev, st.st_ino)
            reset: str | None = None
            if self.identity is not None and identity != self.identity:
                reset = "replaced"
            elif st.st_size < self.offset:
                reset = "truncated"
            elif st.st_size == self.size and st.st_mtime_ns == self.mtime_ns and self.offset >= st.st_size:
                return None
            elif self.offset and not self._anchors_hold(fd):
                reset = "rewritten"
            if reset:
                self._restart()
            self.identity = identity
            self.size, self.mtime_ns = st.st_size, st.st_mtime_ns
            want = min(self.chunk_bytes, st.st_size - self.offset)
            data = os.pread(fd, want, self.offset) if want > 0 else b""
        finally:
            os.close(fd)
        if self.offset == 0 and data:
            self._head = data[:HEAD_BYTES]
        elif len(self._head) < HEAD_BYTES and data:
            self._head = (self._head + data)[:HEAD_BYTES]
        self.offset += len(data)
        if data:
            self._last_byte = data[-1:]
        chunk = TailChunk([], reset, more=self.offset < st.st_size, mtime=st.st_mtime_ns / 1e9, size=st.st_size)
        before = self._pending
        if not (self.blocks and self._block(data, chunk)):
            self._split(data, chunk)
        if self._pending != before or chunk.lines or chunk.block_lines:
            self.pending_since = time.time()
        return chunk

    def take_unterminated(self) -> tuple[int, bytes] | None:
        """Give up waiting for the partial last line's newline: hand it over as a (numbered) line."""
        if not self._pending:
            return None
        self.lines_done += 1
        line, self._pending = self._pending, b""
        return self.lines_done, line

    def _block(self, data: bytes, chunk: TailChunk) -> bool:
        """Plain complete lines as one block (see the module doc); False when `_split` must handle them."""
        end = data.rfind(b"\n")
        if end < 0 or self._discarding or b"\r" in data or b"\r" in self._pending:
            return False
        block = self._pending + data[:end] if self._pending else data[:end]
        if len(block) > self.max_line_bytes and max(map(len, block.split(b"\n"))) > self.max_line_bytes:
            return False
        count = data.count(b"\n", 0, end) + 1
        chunk.block, chunk.first_line, chunk.block_lines = block, self.lines_done + 1, count
        self.lines_done += count
        rest = data[end + 1 :]
        self._pending = b""
        if len(rest) > self.max_line_bytes:
            self._discarding = True  # the line is too long: forget it, wait for its end
        else:
            self._pending = rest
        return True

    def _split(self, data: bytes, chunk: TailChunk) -> None:
        limit = self.max_line_bytes
        parts = data.split(b"\n")
        rest = parts.pop()  # after the last newline: the start of a line still being written
        if parts:
            if self._discarding:
                parts[0] = b"\xff" * (limit + 1)  # the end of an overlong line: still overlong
                self._discarding = False
            elif self._pending:
                parts[0] = self._pending + parts[0]
            self._pending = b""
            first = self.lines_done + 1
            self.lines_done += len(parts)
            numbered = list(zip(range(first, first + len(parts)), parts, strict=True))
            if len(data) + len(parts[0]) > limit and max(map(len, parts)) > limit:
                chunk.overlong.extend(no for no, part in numbered if len(part) > limit)
                numbered = [(no, part) for no, part in numbered if len(part) <= limit]
            if self.split_cr:
                for no, line in numbered:
                    if b"\r" in line:
                        chunk.lines.extend((no, seg) for seg in line.split(b"\r") if seg)
                    elif line:
                        chunk.lines.append((no, line))
            elif b"\r" in data or parts[0].endswith(b"\r"):
                chunk.lines.extend((no, line[:-1] if line.endswith(b"\r") else line) for no, line in numbered)
            else:
                chunk.lines.extend(numbered)
        if self._discarding:
            return
        if len(self._pending) + len(rest) > limit:
            self._discarding = True  # the line is too long: forget it, wait for its end
            self._pending = b""
            return
        self._pending += rest
        if self.split_cr and b"\r" in self._pending:
            # tqdm redraws a line with \r: hand over the finished redraws now, keep the last one
            *done, self._pending = self._pending.split(b"\r")
            chunk.lines.extend((self.lines_done + 1, seg) for seg in done if seg)
        if self.split_cr and _complete_bar(self._pending):
            chunk.lines.append((self.lines_done + 1, self._pending))  # the bar as drawn now
            self._pending = b""


@dataclass(slots=True)
class WholeFile:
    """A file that is rewritten as a whole (trainer_state.json): read it again when it changes."""

    path: str
    max_bytes: int = 256 << 20
    identity: tuple[int, int, int, int] | None = None  # (dev, ino, size, mtime_ns) of the last good read
    seen: tuple[int, int, int, int] | None = None  # ... of the last read attempt

    def read_if_changed(self) -> tuple[bytes, float] | None:
        fd, st = _open_regular(self.path)
        try:
            key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            if key == self.identity or key == self.seen:
                return None
            self.seen = key
            if st.st_size > self.max_bytes:
                raise OSError(f"{self.path} is larger than {self.max_bytes} bytes")
            data = os.pread(fd, st.st_size, 0)
        finally:
            os.close(fd)
        return data, st.st_mtime_ns / 1e9

    def accept(self) -> None:
        """The last read parsed: do not read it again until it changes."""
        self.identity = self.seen

    def retry(self) -> None:
        """The last read did not parse (half-written): read it again on the next poll."""
        self.seen = None
