"""The `kv` line format: `temperature=72.5 pressure=1.02 speed=1480`.

Pairs are separated by spaces, commas or semicolons; a pair is `key=value` or `key:value` (spaces
around the sign are allowed); keys are mapped through the configured aliases (`T` → `temperature`).
The parser is strict on purpose: a line with any token that is not a `key=number` pair is rejected
as a whole, because a corrupted line on the wire must not produce a plausible but wrong reading.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from exporter.errors import LineParseError
from exporter.formats.common import NUMBER as _NUMBER
from exporter.formats.common import quote as _quote

if TYPE_CHECKING:
    from exporter.config import SerialConfig

_SEPARATORS = re.compile(r"[\s,;]+")
_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_.\-]*)[ \t]*[=:][ \t]*([^\s,;]*)")


class KvFormat:
    """`parse_kv` with the configured aliases."""

    def __init__(self, aliases: Mapping[str, str]) -> None:
        self._aliases = dict(aliases)

    def parse(self, line: str) -> dict[str, float]:
        return parse_kv(line, self._aliases)


def build(config: SerialConfig, on_skipped: Callable[[str, str], None]) -> KvFormat:
    """The `kv` format of `config` (it never skips a value: a bad token rejects the line)."""
    return KvFormat(config.aliases)


def parse_kv(line: str, aliases: Mapping[str, str]) -> dict[str, float]:
    """Parse one `kv` line into readings keyed by reading key (aliases applied).

    A key repeated in the line keeps its last value. Raises LineParseError with reason
    `empty` (no pair at all: nothing but separators), `bad_token` (a token that is not
    `key=value`) or `bad_number` (a value that is not a finite decimal number).
    """
    readings: dict[str, float] = {}
    position = 0
    length = len(line)
    while True:
        separator = _SEPARATORS.match(line, position)
        if separator is not None:
            position = separator.end()
        if position >= length:
            break
        pair = _PAIR.match(line, position)
        if pair is None:
            token = _SEPARATORS.split(line[position:], maxsplit=1)[0]
            raise LineParseError("bad_token", f"not a key=value pair: {_quote(token)}")
        key, raw_value = pair.group(1), pair.group(2)
        if not _NUMBER.fullmatch(raw_value):
            raise LineParseError("bad_number", f"{key}: not a number: {_quote(raw_value)}")
        value = float(raw_value)
        if not math.isfinite(value):
            raise LineParseError("bad_number", f"{key}: out of range: {_quote(raw_value)}")
        readings[aliases.get(key, key)] = value
        position = pair.end()  # the value stops at a separator or at the end of the line
    if not readings:
        raise LineParseError("empty", "the line holds no key=value pair")
    return readings
