"""Durations as people write them in exporter.yaml and machines.yaml.

`500ms`, `30s`, `5m`, `24h`, `7d`, combinations such as `1m30s`, or a plain number of seconds.
"""

from __future__ import annotations

import math
import re

_NUMBER = r"(?:\d+(?:\.\d+)?|\.\d+)"
_PART = re.compile(r"(" + _NUMBER + r")\s*(ms|s|m|h|d)")
_DURATION = re.compile(r"\s*(?:" + _NUMBER + r"\s*(?:ms|s|m|h|d)\s*)+")
_PLAIN_NUMBER = re.compile(r"\s*" + _NUMBER + r"\s*")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_seconds(value: object) -> float:
    """Return `value` in seconds, checking the grammar only (a number may still be negative).

    Accepts an int or float (seconds), a string of a number (seconds), or a string of numbers
    with units among ms, s, m, h, d, combined as in `1m30s`. Raises ValueError, whose text names
    what was expected, for anything else: booleans, other types, unknown units. This is the one
    duration grammar of millwatch: the inventory uses it too.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected a duration like 30s, 5m, 24h or a number of seconds, got {value!r}")
    if not isinstance(value, str):
        return float(value)
    if _PLAIN_NUMBER.fullmatch(value):
        return float(value)
    if _DURATION.fullmatch(value):
        return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(value))
    raise ValueError(f"expected a duration like 30s, 5m, 24h or a number of seconds, got {value!r}")


def parse_duration(value: object) -> float:
    """`parse_seconds`, and a ValueError for a negative or non-finite result."""
    seconds = parse_seconds(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"expected a non-negative duration, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """A short human form of `seconds` (`1.5s`, `90s`, `2h`), for messages and the status page."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.3g}s"
    if seconds < 7200:
        return f"{seconds / 60:.3g}m"
    return f"{seconds / 3600:.3g}h"
