"""The points of one run metric: (step, time, value) kept sorted by step in compact numpy arrays.

Storage is 12 bytes a point: int32 steps (widened to int64 only when a step needs it), float32
time offsets from the metric's first time (about 0.06 s resolution after a week) and float32
values (7 significant digits, what TensorBoard keeps), widened to float64 only when a metric needs
it (integers above 2**24, magnitudes outside float32's range).

Merging follows TensorBoard's rules: a point whose step is already present is a duplicate when
its value agrees to 1e-3 (the same point read from another file of the run, e.g. HF's rounded
stdout vs trainer_state.json) and replaces the stored value otherwise; a source whose step goes
backwards (a resume from a checkpoint) drops every stored point at or after that step, unless
the stored point there is the same (the file was only re-read).

Beyond `cap` points the older half is downsampled 2:1 (every other point kept), so old history
thins out geometrically while the recent half stays at full resolution.

Readers keep an opaque cursor per metric; anything other than an append (purge, replacement,
insertion, downsampling) starts a new generation and the next read returns every point with
`reset=True`, so a chart replaces its trace instead of extending it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

_INT32 = np.iinfo(np.int32)
_F32_MAX = float(np.finfo(np.float32).max)
_F32_TINY = float(np.finfo(np.float32).tiny)
_F32_EXACT_INT = float(2**24)
_GENERATION = 2**32  # cursor = generation * _GENERATION + points already read
APPROX_RTOL = 1e-3


class MetricRead(NamedTuple):
    points: list[list[float]]  # [[step, time, value], ...]
    cursor: int
    reset: bool  # True: these points replace everything read before


def significant(values: np.ndarray, digits: int = 7) -> np.ndarray:
    """Round to `digits` significant digits so float32 values print as written (0.1, not 0.10000000149)."""
    x = values.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        magnitude = np.where(x == 0, 0.0, np.floor(np.log10(np.abs(x))))
        scale = 10.0 ** (digits - 1 - magnitude)
        rounded = np.round(x * scale) / scale
    return np.where(np.isfinite(rounded), rounded, x)


def smooth_debiased(values: np.ndarray | list[float], weight: float = 0.6) -> np.ndarray:
    """TensorBoard's smoothing: an exponential moving average with its start-up bias removed.

    TensorBoard computes last = last * w + (1 - w) * v and shows last / (1 - w ** n); that is exactly
    pandas' adjusted EWM with alpha = 1 - w. Views smooth the raw points they read; stored points are raw.
    """
    series = pd.Series(np.asarray(values, np.float64))
    if weight <= 0 or series.empty:
        return series.to_numpy()
    return series.ewm(alpha=1.0 - min(weight, 0.999), adjust=True).mean().to_numpy()


def _needs_float64(values: np.ndarray) -> bool:
    if values.size == 0:
        return False
    mag = np.abs(values)
    if float(mag.max()) > _F32_MAX or bool(np.any((mag > 0) & (mag < _F32_TINY))):
        return True
    return bool(np.any((mag > _F32_EXACT_INT) & (values == np.round(values))))


class MetricSeries:
    __slots__ = ("_n", "_steps", "_toff", "_values", "base_time", "cap", "generation", "name", "seq")

    def __init__(self, name: str, cap: int = 100_000) -> None:
        self.name = name
        self.cap = max(16, cap)
        self._steps = np.empty(0, np.int32)
        self._toff = np.empty(0, np.float32)
        self._values = np.empty(0, np.float32)
        self._n = 0
        self.base_time: float | None = None
        self.generation = 0
        self.seq = 0  # registry sequence of the last change

    def __len__(self) -> int:
        return self._n

    @property
    def nbytes(self) -> int:
        return self._steps.nbytes + self._toff.nbytes + self._values.nbytes

    @property
    def last_step(self) -> int | None:
        return int(self._steps[self._n - 1]) if self._n else None

    def last_value(self) -> float | None:
        if not self._n:
            return None
        last = self._values[self._n - 1 : self._n]
        return float(significant(last)[0] if last.dtype == np.float32 else last[0])

    # -- storage ---------------------------------------------------------------------------------
    def _reserve(self, total: int, steps: np.ndarray, values: np.ndarray) -> None:
        """Room for `total` points, widening dtypes the new points need."""
        step_dtype: np.dtype[Any] = self._steps.dtype
        if steps.size and (int(steps.max()) > _INT32.max or int(steps.min()) < _INT32.min):
            step_dtype = np.dtype(np.int64)
        value_dtype: np.dtype[Any] = self._values.dtype
        if value_dtype == np.float32 and _needs_float64(values):
            value_dtype = np.dtype(np.float64)
        size = len(self._steps)
        if total <= size and step_dtype == self._steps.dtype and value_dtype == self._values.dtype:
            return
        if total > size:
            size = total if self._n == 0 else max(total, int(size * 1.25) + 16)
        n = self._n
        grown_steps = np.empty(size, step_dtype)
        grown_steps[:n] = self._steps[:n]
        grown_toff = np.empty(size, np.float32)
        grown_toff[:n] = self._toff[:n]
        grown_values = np.empty(size, value_dtype)
        grown_values[:n] = self._values[:n]
        self._steps, self._toff, self._values = grown_steps, grown_toff, grown_values

    def _append(self, steps: np.ndarray, times: np.ndarray, values: np.ndarray) -> None:
        if self.base_time is None:
            self.base_time = float(times[0])
        n, k = self._n, len(steps)
        self._reserve(n + k, steps, values)
        self._steps[n : n + k] = steps
        self._toff[n : n + k] = times - self.base_time
        self._values[n : n + k] = values
        self._n = n + k

    def _replace_all(self, steps: np.ndarray, times: np.ndarray, values: np.ndarray) -> None:
        self._n = 0
        if len(steps):
            self._append(steps, times, values)
        self.generation += 1

    def clear(self) -> None:
        """Drop every point (the run is read again from the start); readers are told to reset."""
        self._replace_all(np.empty(0, np.int64), np.empty(0), np.empty(0))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(steps int64, times float64, values float64) copies of every stored point."""
        n = self._n
        base = self.base_time or 0.0
        return (
            self._steps[:n].astype(np.int64),
            self._toff[:n].astype(np.float64) + base,
            self._values[:n].astype(np.float64),
        )

    # -- merging ---------------------------------------------------------------------------------
    def merge(self, steps: np.ndarray, times: np.ndarray, values: np.ndarray, resumed: bool = False) -> bool:
        """Merge points whose steps never decrease; True when anything changed.

        `resumed`: the source's step went backwards to steps[0] (a resume), so stored points at or
        after steps[0] are dropped unless the stored point at steps[0] is the same one.
        """
        if len(steps) == 0:
            return False
        steps = np.asarray(steps, np.int64)
        times = np.asarray(times, np.float64)
        values = np.asarray(values, np.float64)
        if len(steps) > 1:  # one point per step within a batch: the last one written wins
            keep = np.append(steps[1:] != steps[:-1], True)
            if not keep.all():
                steps, times, values = steps[keep], times[keep], values[keep]
        changed = False
        n = self._n
        stored = self._steps[:n]
        if resumed and n:
            at = int(np.searchsorted(stored, steps[0]))
            same = at < n and stored[at] == steps[0] and bool(self._close(self._values[at], values[0]))
            if not same and at < n:
                self._n = n = at
                stored = self._steps[:n]
                self.generation += 1
                changed = True
        if n == 0 or steps[0] > stored[n - 1]:
            self._append(steps, times, values)
            changed = True
        else:
            changed = self._merge_general(steps, times, values) or changed
        if self._n > self.cap:
            self._downsample()
        return changed

    @staticmethod
    def _close(stored: np.ndarray | np.floating[Any], new: np.ndarray | float) -> np.ndarray:
        return np.asarray(np.isclose(np.asarray(stored, np.float64), new, rtol=APPROX_RTOL, atol=1e-12))

    def _merge_general(self, steps: np.ndarray, times: np.ndarray, values: np.ndarray) -> bool:
        n = self._n
        stored = self._steps[:n]
        idx = np.searchsorted(stored, steps)
        clipped = np.minimum(idx, n - 1)
        present = (idx < n) & (stored[clipped] == steps)
        changed = False
        if present.any():
            at = idx[present]
            differ = ~self._close(self._values[at], values[present])
            if differ.any():
                base = self.base_time or 0.0
                self._values[at[differ]] = values[present][differ]
                self._toff[at[differ]] = times[present][differ] - base
                self.generation += 1
                changed = True
        new = ~present
        if not new.any():
            return changed
        steps, times, values = steps[new], times[new], values[new]
        if steps[0] > stored[n - 1]:
            self._append(steps, times, values)
            return True
        old_steps, old_times, old_values = self.arrays()
        all_steps = np.concatenate([old_steps, steps])
        order = np.argsort(all_steps, kind="stable")
        self._replace_all(
            all_steps[order], np.concatenate([old_times, times])[order], np.concatenate([old_values, values])[order]
        )
        return True

    def _downsample(self) -> None:
        """Keep every other point of the older half (2:1); the newer half stays as it is."""
        n = self._n
        half = n // 2
        keep = np.concatenate([np.arange(0, half, 2), np.arange(half, n)])
        steps, times, values = self.arrays()
        self._replace_all(steps[keep], times[keep], values[keep])

    # -- reading ---------------------------------------------------------------------------------
    @property
    def cursor(self) -> int:
        return self.generation * _GENERATION + self._n

    def read_after(self, cursor: int = 0) -> MetricRead:
        generation, count = divmod(max(0, cursor), _GENERATION)
        if generation == self.generation and count <= self._n:
            start, reset = count, False
        else:
            start, reset = 0, True
        n = self._n
        if start >= n:
            return MetricRead([], self.cursor, reset)
        base = self.base_time or 0.0
        steps = self._steps[start:n].tolist()
        times = np.round(self._toff[start:n].astype(np.float64) + base, 3).tolist()
        raw = self._values[start:n]
        values = (significant(raw) if raw.dtype == np.float32 else raw).tolist()
        return MetricRead([list(p) for p in zip(steps, times, values, strict=True)], self.cursor, reset)
