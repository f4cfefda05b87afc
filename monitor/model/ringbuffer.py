"""Fixed-capacity ring buffer of (sequence, time, values) rows, read by sequence cursor.

Every row carries a store-wide sequence number, so a reader keeps one integer per view and asks
for "everything after cursor C"; old rows are overwritten and memory never grows.
Not thread-safe on its own: the Store serialises access.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Chunk:
    """Rows read from a ring buffer: `values` has one column per value the buffer keeps."""

    seqs: np.ndarray
    times: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return int(self.seqs.shape[0])

    @property
    def cursor(self) -> int:
        """The cursor to pass next time (the last sequence read), or -1 when empty."""
        return int(self.seqs[-1]) if len(self) else -1


class RingBuffer:
    __slots__ = ("_next", "_seqs", "_size", "_times", "_values", "capacity", "columns")

    def __init__(self, capacity: int, columns: int = 1) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.columns = columns
        self._seqs = np.zeros(capacity, dtype=np.int64)
        self._times = np.zeros(capacity, dtype=np.float64)
        self._values = np.zeros((capacity, columns), dtype=np.float64)
        self._next = 0  # slot the next row goes into
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def last_seq(self) -> int:
        return int(self._seqs[(self._next - 1) % self.capacity]) if self._size else -1

    @property
    def nbytes(self) -> int:
        return self._seqs.nbytes + self._times.nbytes + self._values.nbytes

    def append(self, seq: int, time: float, *values: float) -> None:
        i = self._next
        self._seqs[i] = seq
        self._times[i] = time
        self._values[i] = values
        self._next = (i + 1) % self.capacity
        if self._size < self.capacity:
            self._size += 1

    def latest(self) -> tuple[float, tuple[float, ...]] | None:
        if not self._size:
            return None
        i = (self._next - 1) % self.capacity
        return float(self._times[i]), tuple(float(v) for v in self._values[i])

    def _ordered(self, start: int = 0) -> np.ndarray:
        """Slot indices from the oldest row (plus `start`) to the newest."""
        oldest = (self._next - self._size) % self.capacity
        return (oldest + np.arange(start, self._size)) % self.capacity

    def read_after(self, cursor: int, limit: int | None = None) -> Chunk:
        """Rows whose sequence is > cursor, oldest first; the newest `limit` of them when given."""
        if self._size == 0 or self.last_seq <= cursor:
            return _empty(self.columns)
        order = self._ordered()
        start = int(np.searchsorted(self._seqs[order], cursor, side="right"))
        if limit is not None:
            start = max(start, self._size - limit)
        idx = order[start:]
        return Chunk(self._seqs[idx], self._times[idx], self._values[idx])


def _empty(columns: int) -> Chunk:
    return Chunk(np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros((0, columns), np.float64))
