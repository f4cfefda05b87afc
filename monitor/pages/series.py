"""A run metric as a page draws it: downsampled for the first figure, smoothed per viewer.

The first figure of a chart holds at most about two points per pixel column: the points are cut
into `buckets` runs of consecutive steps and each run keeps its lowest and highest value (and the
first and last point overall), so a spike or a divergence stays visible however long the run.
Points that arrive later are sent as they are (they are few per tick).

Smoothing is TensorBoard's debiased EMA (`last = last·w + (1−w)·v`, shown as `last / (1 − wⁿ)`),
with each viewer's own weight; `Ema` continues it point by point, so a tick costs O(new points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from monitor.model.run_points import smooth_debiased

CHART_BUCKETS = 800  # about the pixel width of a chart: at most 2 points per pixel column
MAX_WEIGHT = 0.999


def keep_indices(values: np.ndarray, buckets: int = CHART_BUCKETS) -> np.ndarray:
    """Indices (sorted) of the points to draw: all of them when few, else min and max per bucket."""
    n = len(values)
    if n <= 2 * buckets:
        return np.arange(n)
    bucket = np.arange(n) * buckets // n  # non-decreasing: consecutive points share a bucket
    order = np.lexsort((values, bucket))
    ends = np.flatnonzero(np.append(bucket[order][1:] != bucket[order][:-1], True))
    starts = np.append(0, ends[:-1] + 1)
    return np.unique(np.concatenate([order[starts], order[ends], [0, n - 1]]))


def clamp_weight(weight: float) -> float:
    return min(max(float(weight), 0.0), MAX_WEIGHT) if math.isfinite(weight) else 0.0


def rounded(values: np.ndarray) -> list[float]:
    """5 significant digits: what a chart can show, and half the bytes of a float's repr."""
    return [float(f"{v:.5g}") for v in values.tolist()]


@dataclass(slots=True)
class Ema:
    """The debiased EMA's running state for one trace, continued as new points arrive."""

    weight: float
    last: float = 0.0
    n: int = 0

    def add(self, values: list[float]) -> list[float]:
        w, out = self.weight, []
        for v in values:
            self.last = self.last * w + (1 - w) * v
            self.n += 1
            out.append(float(f"{self.last / (1 - w ** self.n):.5g}") if w > 0 else v)
        return out

    @classmethod
    def over(cls, values: np.ndarray, weight: float) -> tuple[Ema, np.ndarray]:
        """The smoothed values of a whole series, and the state that continues it."""
        smoothed = smooth_debiased(values, weight)
        n = len(values)
        state = cls(weight)
        if n:
            state.n = n
            state.last = float(smoothed[-1]) * (1 - weight**n) if weight > 0 else float(smoothed[-1])
        return state, smoothed


@dataclass(slots=True)
class Drawn:
    """One run's metric as first drawn: x, raw and smoothed y, and where reading continues."""

    x: list[float]
    raw: list[float]
    sx: list[float]  # the smoothed line is smooth: half the points draw it as well
    smooth: list[float]
    cursor: int
    ema: Ema


def drawn(steps: np.ndarray, values: np.ndarray, cursor: int, weight: float,
          buckets: int = CHART_BUCKETS) -> Drawn:
    finite = np.isfinite(values)
    if not finite.all():
        steps, values = steps[finite], values[finite]
    ema, smoothed = Ema.over(values, weight)
    keep = keep_indices(values, buckets)
    half = keep if len(keep) < 2 * buckets else np.unique(np.append(keep[::2], keep[-1]))
    return Drawn(steps[keep].astype(float).tolist(), rounded(values[keep]), steps[half].astype(float).tolist(),
                 rounded(smoothed[half]), cursor, ema)


def new_points(points: list[list[float]]) -> tuple[list[float], list[float]]:
    """(steps, values) of points read after a cursor ([[step, time, value], ...]), finite values only."""
    xs, ys = [], []
    for step, _time, value in points:
        v = float(value)
        if math.isfinite(v):
            xs.append(float(step))
            ys.append(v)
    return xs, ys
