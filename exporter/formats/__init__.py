"""Sensor line formats: one decoded line of text → `{reading key: value}`, chosen by `serial.format`.

Each format is one module with a `build(config, on_skipped)` function returning a `LineFormat`;
`FORMATS` below is the one list of them. A format:

- returns the line's readings keyed by reading key, aliases (`serial.aliases`) already applied;
- raises `LineParseError(reason, detail)` for a line that holds no usable reading (the reader
  counts it under `millwatch_serial_errors_total{reason="parse"}`);
- raises `LineIgnored` for a line that is not data by design (a CSV header), which is skipped
  without counting;
- calls `on_skipped(key, why)` for a value it leaves out of an otherwise good line (a JSON string),
  which the reader counts under `reason="skipped_value"`.

Adding a format: one module here with `build`, one entry in `FORMATS`, its keys in
`exporter/config.py` (if it has any), one test file `tests/exporter/test_format_<name>.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from exporter.formats import csv, json, kv, regex

if TYPE_CHECKING:
    from exporter.config import SerialConfig

SkipCallback = Callable[[str, str], None]
"""`on_skipped(key, why)`: a value of a good line that the format left out."""


class LineFormat(Protocol):
    """One line of text → readings. Raises LineParseError (counted) or LineIgnored (skipped)."""

    def parse(self, line: str) -> dict[str, float]: ...


Builder = Callable[["SerialConfig", SkipCallback], LineFormat]

FORMATS: dict[str, Builder] = {
    "kv": kv.build,
    "json": json.build,
    "csv": csv.build,
    "regex": regex.build,
}
FORMAT_NAMES = tuple(FORMATS)


def _ignore(key: str, why: str) -> None:
    return None


def make_format(config: SerialConfig, on_skipped: SkipCallback | None = None) -> LineFormat:
    """The parser for `config.format` (a name of FORMATS; the config has checked it)."""
    return FORMATS[config.format](config, on_skipped or _ignore)
