"""The `regex` line format, for vendor text: named groups of `serial.pattern` are the readings.

`pattern: 'T:(?P<temperature>[-\\d.]+)C P:(?P<pressure>[\\d.]+)bar'` reads
`ACME#3 T:072.5C P:1.02bar` as temperature 72.5 and pressure 1.02. The pattern is searched for
anywhere in the line (anchor it with `^`/`$` to be strict); every named group that took part in
the match must hold a number; an optional group that did not take part is left out. A line the
pattern does not match is a LineParseError `no_match`. The config checks that the pattern
compiles and has at least one named group.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from exporter.errors import LineParseError
from exporter.formats.common import number, quote

if TYPE_CHECKING:
    from exporter.config import SerialConfig


class RegexFormat:
    def __init__(self, pattern: str, aliases: Mapping[str, str]) -> None:
        self._pattern = re.compile(pattern)
        self._aliases = dict(aliases)

    def parse(self, line: str) -> dict[str, float]:
        """Raises LineParseError `no_match`, `bad_number` or `empty` (no named group took part)."""
        match = self._pattern.search(line)
        if match is None:
            raise LineParseError("no_match", f"the pattern does not match {quote(line)}")
        readings: dict[str, float] = {}
        for name, text in match.groupdict().items():
            if text is None:
                continue
            readings[self._aliases.get(name, name)] = number(name, text)
        if not readings:
            raise LineParseError("empty", f"no named group matched in {quote(line)}")
        return readings


def build(config: SerialConfig, on_skipped: Callable[[str, str], None]) -> RegexFormat:
    return RegexFormat(config.pattern or "", config.aliases)
