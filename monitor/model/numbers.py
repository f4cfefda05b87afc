"""The one rule for "a number or unknown", shared by collectors, the API, /metrics and the wall.

`finite(value)` is a plain float when `value` is a real number that is finite, else None:
- bools are not numbers (True is not 1 %): None;
- NaN and ±infinity are "unknown" (JSON cannot carry them): None;
- text is not a number, even "12" (reading text is a format reader's job, which reports what it
  could not read): None; so is None, and anything else that is not a real number.
Ints, floats and numpy scalars are numbers. `scale` converts units (mW → W: 1e-3) before the check,
so an overflow to infinity is unknown too.
"""

from __future__ import annotations

import math
import numbers
from typing import Any


def finite(value: Any, scale: float = 1.0) -> float | None:
    """`value * scale` as a finite float, or None (see the module's rule)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value) * scale
    except OverflowError:  # an int too large for a float
        return None
    return number if math.isfinite(number) else None
