"""The `csv` line format: values in a fixed order, `72.5,1.02,1480`, names from `serial.fields`.

`serial.fields` names each column in order; a column named `null` (or `-`) is read past (a
time stamp, a status word). `serial.separator` is the separator (default `,`; `;` and tab are
common). Quoted cells are read as the stdlib `csv` module reads them. A line must have exactly as
many cells as there are fields, and every named cell must be a number; otherwise the line is a
LineParseError (`field_count`, `bad_number`).

With `serial.header: auto` (the default) a line with one cell per field, none of them a number and
none of the named ones empty (the column titles a logger prints when it starts, or after every
reconnect), is recognised as a header and skipped without counting an error; with `header: none`
such a line is a parse error like any other.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from exporter.errors import LineIgnored, LineParseError
from exporter.formats.common import is_number, number, quote

if TYPE_CHECKING:
    from exporter.config import SerialConfig


class CsvFormat:
    def __init__(
        self,
        fields: Sequence[str | None],
        separator: str,
        detect_header: bool,
        aliases: Mapping[str, str],
    ) -> None:
        self._fields = tuple(fields)
        self._separator = separator
        self._detect_header = detect_header
        self._aliases = dict(aliases)

    def parse(self, line: str) -> dict[str, float]:
        """Raises LineParseError `field_count` or `bad_number`, LineIgnored for a header line."""
        try:
            cells = next(csv.reader([line], delimiter=self._separator, strict=True), [])
        except csv.Error as exc:
            raise LineParseError("bad_csv", f"{exc}: {quote(line)}") from None
        if self._detect_header and self._is_header(cells):
            raise LineIgnored(f"header line {quote(line)}")
        if len(cells) != len(self._fields):
            raise LineParseError(
                "field_count", f"expected {len(self._fields)} fields, got {len(cells)}: {quote(line)}"
            )
        readings: dict[str, float] = {}
        for name, cell in zip(self._fields, cells):
            if name is None:
                continue
            readings[self._aliases.get(name, name)] = number(name, cell)
        return readings

    def _is_header(self, cells: Sequence[str]) -> bool:
        """As many cells as fields, none a number, every named column's title given."""
        if len(cells) != len(self._fields) or any(is_number(cell) for cell in cells):
            return False
        return all(cell.strip() for name, cell in zip(self._fields, cells) if name is not None)


def build(config: SerialConfig, on_skipped: Callable[[str, str], None]) -> CsvFormat:
    return CsvFormat(config.fields, config.separator, config.header == "auto", config.aliases)
