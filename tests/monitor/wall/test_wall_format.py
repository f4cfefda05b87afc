"""The wall's one duration style (monitor/wall/format.py): uptime, data age, alert age and ETA."""

import math

import pytest

from monitor.wall import format as fmt


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s"), (12.9, "12 s"), (65, "1 min 5 s"), (3 * 3600 + 12 * 60 + 7, "3 h 12 min"),
    (12 * 86400 + 4 * 3600 + 59, "12 d 4 h"),
])
def test_duration_writes_two_units_at_most(seconds: float, text: str) -> None:
    assert fmt.duration(seconds) == text


def test_coarse_drops_seconds_from_minutes_and_tenths_apply_under_ten_seconds() -> None:
    assert fmt.duration(245, coarse=True) == "4 min"
    assert fmt.duration(0.42, tenths=True) == "0.4 s"
    assert fmt.duration(12.5, tenths=True) == "12 s"


@pytest.mark.parametrize("seconds", [None, -1, math.nan, math.inf, "60", True])
def test_unknown_or_negative_spans_are_na(seconds: object) -> None:
    assert fmt.duration(seconds) == fmt.NA


def test_every_wall_panel_uses_the_same_style() -> None:
    assert fmt.age(-3) == "0.0 s"  # a clock stepped back: fresh, not n/a
    assert fmt.age(185) == "3 min 5 s"
    assert fmt.ago(3900) == "1 h 5 min ago"
    assert fmt.ago(75) == "1 min ago"
