"""finite(): the one rule for "a number or unknown" (monitor/model/numbers.py)."""

import math

import numpy as np
import pytest

from monitor.model.numbers import finite


@pytest.mark.parametrize("value", [None, True, False, "12", b"1", math.nan, math.inf, -math.inf, [1], {}, 10**400])
def test_anything_that_is_not_a_finite_real_number_is_unknown(value: object) -> None:
    assert finite(value) is None


@pytest.mark.parametrize(("value", "expected"), [(3, 3.0), (-2.5, -2.5), (0, 0.0), (np.float32(0.5), 0.5),
                                                 (np.int64(7), 7.0)])
def test_real_numbers_become_plain_floats(value: object, expected: float) -> None:
    found = finite(value)
    assert found == expected and type(found) is float


def test_scale_converts_before_the_check() -> None:
    assert finite(250_000, 1e-3) == 250.0
    assert finite(1e308, 10.0) is None  # overflows to infinity: unknown, not inf
