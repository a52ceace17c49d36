"""The `json` line format: one JSON object per line, `{"temperature": 72.5, "spindle": {"rpm": 1480}}`.

Nested objects are flattened with `_` (`spindle_rpm`), up to `MAX_DEPTH` levels. Numbers are
readings; every other value (text, true/false, null, a list, an object nested too deep) is left out
of the line and reported through `on_skipped` (counted as `skipped_value`), so a device that adds a
`"status": "ok"` field still has its numbers read. A line that is not a JSON object, or holds no
number at all, is a LineParseError. Aliases apply to the flattened keys.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from exporter.errors import LineParseError
from exporter.formats.common import quote

if TYPE_CHECKING:
    from exporter.config import SerialConfig

MAX_DEPTH = 8
SEPARATOR = "_"


class JsonFormat:
    def __init__(self, aliases: Mapping[str, str], on_skipped: Callable[[str, str], None]) -> None:
        self._aliases = dict(aliases)
        self._on_skipped = on_skipped

    def parse(self, line: str) -> dict[str, float]:
        """Raises LineParseError `not_json`, `not_object` or `no_number`."""
        try:
            document = json.loads(line)
        except (ValueError, RecursionError) as exc:  # RecursionError: `[[[[...` nested past the stack
            raise LineParseError("not_json", f"{_short_reason(exc)}: {quote(line)}") from None
        if not isinstance(document, dict):
            raise LineParseError("not_object", f"expected a JSON object, got {quote(line)}")
        readings: dict[str, float] = {}
        self._flatten(document, "", 1, readings)
        if not readings:
            raise LineParseError("no_number", f"the object holds no number: {quote(line)}")
        return readings

    def _flatten(self, node: Mapping[str, Any], prefix: str, depth: int, out: dict[str, float]) -> None:
        for raw_key, value in node.items():
            key = f"{prefix}{SEPARATOR}{raw_key}" if prefix else str(raw_key)
            if isinstance(value, dict):
                if depth >= MAX_DEPTH:
                    self._on_skipped(key, f"nested deeper than {MAX_DEPTH} levels")
                else:
                    self._flatten(value, key, depth + 1, out)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                try:
                    number = float(value)
                except OverflowError:  # an integer of hundreds of digits
                    raise LineParseError("bad_number", f"{key}: out of range") from None
                if not math.isfinite(number):  # NaN / Infinity, which Python's json accepts
                    raise LineParseError("bad_number", f"{key}: not a finite number: {value!r}")
                out[self._aliases.get(key, key)] = number
            else:
                self._on_skipped(key, f"not a number: {quote(json.dumps(value))}")


def _short_reason(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).split(":", 1)[0]


def build(config: SerialConfig, on_skipped: Callable[[str, str], None]) -> JsonFormat:
    return JsonFormat(config.aliases, on_skipped)
