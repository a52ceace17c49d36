"""What the line formats share: the number grammar and how a bad token is quoted in a message."""

from __future__ import annotations

import math
import re

from exporter.errors import LineParseError

NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
"""A plain decimal number, as sensors write them (no `nan`, `inf`, hex or thousands separators)."""
QUOTE_LIMIT = 40


def quote(text: str) -> str:
    """`text` as a message quotes it: repr, cut to QUOTE_LIMIT characters."""
    if len(text) > QUOTE_LIMIT:
        text = text[: QUOTE_LIMIT - 3] + "..."
    return repr(text)


def is_number(text: str) -> bool:
    return NUMBER.fullmatch(text.strip()) is not None


def number(key: str, text: str) -> float:
    """`text` as a finite float, or LineParseError `bad_number` naming `key`."""
    raw = text.strip()
    if not NUMBER.fullmatch(raw):
        raise LineParseError("bad_number", f"{key}: not a number: {quote(text)}")
    value = float(raw)
    if not math.isfinite(value):
        raise LineParseError("bad_number", f"{key}: out of range: {quote(text)}")
    return value
