"""Durations as people write them in exporter.yaml: `500ms`, `30s`, `5m`, `24h`, `7d`, or seconds."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """Return `value` in seconds.

    Accepts an int or float (seconds) or a string of a number and one unit among
    ms, s, m, h, d. Raises ValueError, whose text names what was expected, for anything
    else: booleans, negative or non-finite numbers, unknown units.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 30s, 5m, 24h or a number of seconds, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"expected a duration like 30s, 5m, 24h or a number of seconds, got {value!r}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"expected a duration like 30s, 5m, 24h or a number of seconds, got {value!r}")
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
