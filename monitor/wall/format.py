"""Pure formatting for the wall: numbers in, short display strings out. "n/a" for anything unknown."""

from __future__ import annotations

import time
from typing import Any

from monitor.model.durations import duration as duration  # the wall's one duration rule
from monitor.model.numbers import finite

NA = "n/a"
GIB = 1024**3


def percent(value: Any) -> str:
    v = finite(value)
    return NA if v is None else f"{v:.0f}"


def fill(value: Any) -> int:
    """A bar's fill, whole percent 0..100 (finer steps are invisible and cost bytes); unknown → 0."""
    v = finite(value)
    return 0 if v is None else round(max(0.0, min(100.0, v)))


def ratio(part: Any, whole: Any) -> float | None:
    p, w = finite(part), finite(whole)
    return p / w if p is not None and w else None


def gib(value: Any, digits: int = 1) -> str:
    v = finite(value)
    return NA if v is None else f"{v / GIB:.{digits}f}"


def bytes_size(value: Any) -> str:
    """1536 → "1.5 KiB"; sizes of memory and disks (binary units)."""
    v = finite(value)
    if v is None:
        return NA
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(v) < 1024 or unit == "PiB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1024
    return NA  # unreachable


def rate(value: Any) -> str:
    """Bytes per second in decimal units, the way network and disk rates are usually quoted."""
    v = finite(value)
    if v is None:
        return NA
    for unit in ("B/s", "kB/s", "MB/s", "GB/s", "TB/s"):
        if abs(v) < 1000 or unit == "TB/s":
            return f"{v:.0f} {unit}" if unit == "B/s" else f"{v:.1f} {unit}"
        v /= 1000
    return NA  # unreachable


def celsius(value: Any) -> str:
    v = finite(value)
    return NA if v is None else f"{v:.0f} °C"


def power(draw: Any, limit: Any) -> str:
    d, lim = finite(draw), finite(limit)
    if d is None:
        return NA
    return f"{d:.0f} W" if lim is None else f"{d:.0f} / {lim:.0f} W"


def total_power(value: Any) -> str:
    v = finite(value)
    if v is None:
        return NA
    return f"{v / 1000:.2f} kW" if v >= 1000 else f"{v:.0f} W"


def age(seconds: float) -> str:
    """How old the newest data is: "0.4 s", "12 s", "3 min 5 s" (a clock stepped back reads 0.0 s)."""
    return duration(max(0.0, seconds), tenths=True)


def ago(seconds: float) -> str:
    """How long ago something was raised: "12 s ago", "3 min ago", "1 h 5 min ago"."""
    return duration(max(0.0, seconds), coarse=True) + " ago"


def clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def day(t: float) -> str:
    return time.strftime("%a %d %b %Y", time.localtime(t))


def text(value: Any, default: str = NA) -> str:
    """Outside text as a plain string (never None); shown through text-only elements."""
    if value is None:
        return default
    s = str(value)
    return s if s.strip() else default
