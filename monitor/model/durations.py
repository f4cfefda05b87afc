"""The one way labwall writes a span of time, on the wall, the pages and in alert texts (which the
wall shows): two units at most, "12 d 4 h", "3 h 12 min", "4 min 5 s" ("4 min" when coarse), "12 s";
under 10 s with tenths "0.4 s"; "n/a" for unknown or negative spans."""

from __future__ import annotations

from typing import Any

from monitor.model.numbers import finite

NA = "n/a"


def duration(seconds: Any, coarse: bool = False, tenths: bool = False) -> str:
    """A span of time (uptime, data age, alert age, ETA, how long a condition held): see the module."""
    s = finite(seconds)
    if s is None or s < 0:
        return NA
    if tenths and s < 10:
        return f"{s:.1f} s"
    whole = int(s)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min" if coarse else f"{minutes} min {secs} s"
    return f"{secs} s"
