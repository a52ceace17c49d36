"""The bulk import's two formats, turned into machine entries with their row numbers.

- YAML: a `machines:` list (as in machines.yaml) or a bare list of entries. Each entry replaces the
  machine of its id whole, or is added. Rows are counted from 1 in list order.
- CSV (UTF-8, a header row): columns `id, name, mode, url, site, lat, lon, labels, enabled,
  scrape_interval, scrape_timeout, push_interval, plan_x, plan_y`; only `id` is required. `labels` is
  `key=value;key=value`, `enabled` true/false (yes/no, 1/0). A row adds its machine, or changes
  only the keys of its columns in the machine of its id (what CSV cannot say — auth, thresholds,
  alerts — is kept); an empty cell removes its key. Rows are the file's line numbers (the header
  is row 1).

Shape problems (a missing id, a number that is not one, a duplicate id) are raised here as
EditRefused with the row; the inventory's own rules check the result in the editor.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from typing import Any

from millwatch_common.yamltext import YAMLSyntaxError, load_roundtrip
from server.inventory_edit import EditRefused, FieldProblem
from server.inventory_yaml import plain

MAX_ROWS = 20_000
CSV_COLUMNS = (
    "id",
    "name",
    "mode",
    "url",
    "site",
    "lat",
    "lon",
    "labels",
    "enabled",
    "scrape_interval",
    "scrape_timeout",
    "push_interval",
    "plan_x",
    "plan_y",
)
# Columns that map to one key of the entry as they are (text).
_TEXT_COLUMNS = ("name", "mode", "url", "site", "scrape_interval", "scrape_timeout", "push_interval")
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def rows_from_yaml(text: str) -> list[tuple[int, dict[str, Any]]]:
    """(row, entry) for each machine of a YAML import; EditRefused for a bad document or entry."""
    try:
        document = load_roundtrip(text)
    except YAMLSyntaxError as e:
        raise EditRefused([FieldProblem((), e.message, line=e.line)]) from None
    items: Any = document
    if isinstance(document, Mapping):
        extra = [str(k) for k in document if k != "machines"]
        if extra:
            raise EditRefused(
                [FieldProblem((), f"only `machines:` is imported; edit {', '.join(extra)} in the file")]
            )
        items = document.get("machines")
    if not isinstance(items, list):
        raise EditRefused([FieldProblem((), "expected a `machines:` list or a list of machines")])
    _check_count(len(items))
    rows = []
    for index, item in enumerate(items):
        row = index + 1
        line = items.lc.item(index)[0] + 1 if hasattr(items, "lc") else None
        if not isinstance(item, Mapping):
            raise EditRefused([FieldProblem((), "each machine must be a mapping", row=row, line=line)])
        entry = plain(item)
        if not isinstance(entry.get("id"), str) or not entry["id"]:
            raise EditRefused([FieldProblem(("id",), "required", row=row, line=line)])
        rows.append((row, {k: v for k, v in entry.items() if v is not None}))
    _check_unique(rows)
    return rows


def rows_from_csv(text: str) -> list[tuple[int, dict[str, Any]]]:
    """(row, partial entry) for each CSV row; a key with value None is to be removed."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise EditRefused([FieldProblem((), "empty CSV: a header row is needed")]) from None
    except csv.Error as e:
        raise EditRefused([FieldProblem((), f"CSV: {e}", row=1)]) from None
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        raise EditRefused(
            [
                FieldProblem(
                    (unknown[0],),
                    f"unknown column {unknown[0]!r} (columns: {', '.join(CSV_COLUMNS)})",
                    row=1,
                )
            ]
        )
    if "id" not in header:
        raise EditRefused([FieldProblem(("id",), "the header needs an `id` column", row=1)])
    if len(set(header)) != len(header):
        raise EditRefused([FieldProblem((), "a column is named twice in the header", row=1)])
    if ("lat" in header) != ("lon" in header) or ("plan_x" in header) != ("plan_y" in header):
        raise EditRefused([FieldProblem((), "lat and lon (and plan_x and plan_y) go together", row=1)])
    rows: list[tuple[int, dict[str, Any]]] = []
    try:
        for cells in reader:
            row = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            _check_count(len(rows) + 1)
            if len(cells) != len(header):
                raise EditRefused(
                    [FieldProblem((), f"{len(cells)} cells, the header has {len(header)}", row=row)]
                )
            rows.append((row, _csv_entry(dict(zip(header, (c.strip() for c in cells), strict=True)), row)))
    except csv.Error as e:
        raise EditRefused([FieldProblem((), f"CSV: {e}", row=reader.line_num)]) from None
    _check_unique(rows)
    return rows


def _csv_entry(cells: dict[str, str], row: int) -> dict[str, Any]:
    if not cells["id"]:
        raise EditRefused([FieldProblem(("id",), "required", row=row)])
    entry: dict[str, Any] = {"id": cells["id"]}
    for column in _TEXT_COLUMNS:
        if column in cells:
            entry[column] = cells[column] or None
    if "lat" in cells:
        if cells["lat"] or cells["lon"]:
            entry["location"] = {
                "lat": _number(cells["lat"], ("location", "lat"), row),
                "lon": _number(cells["lon"], ("location", "lon"), row),
            }
        else:
            entry["location"] = None
    if "plan_x" in cells:
        if cells["plan_x"] or cells["plan_y"]:
            entry["plan_position"] = {
                "x": _number(cells["plan_x"], ("plan_position", "x"), row),
                "y": _number(cells["plan_y"], ("plan_position", "y"), row),
            }
        else:
            entry["plan_position"] = None
    if "labels" in cells:
        entry["labels"] = _labels(cells["labels"], row) or None
    if "enabled" in cells:
        value = cells["enabled"].lower()
        if value in _TRUE:
            entry["enabled"] = True
        elif value in _FALSE:
            entry["enabled"] = False
        elif value:
            raise EditRefused([FieldProblem(("enabled",), "must be true or false", row=row)])
        else:
            entry["enabled"] = None
    return entry


def _number(text: str, loc: tuple[str, ...], row: int) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise EditRefused([FieldProblem(loc, f"must be a number (got {text[:40]!r})", row=row)])
    return value


def _labels(text: str, row: int) -> dict[str, str]:
    labels: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise EditRefused(
                [FieldProblem(("labels",), f"expected key=value;key=value (got {part[:40]!r})", row=row)]
            )
        labels[key.strip()] = value.strip()
    return labels


def _check_count(count: int) -> None:
    if count > MAX_ROWS:
        raise EditRefused([FieldProblem((), f"at most {MAX_ROWS} machines per import")])


def _check_unique(rows: list[tuple[int, dict[str, Any]]]) -> None:
    first: dict[str, int] = {}
    for row, entry in rows:
        machine_id = entry["id"]
        if machine_id in first:
            raise EditRefused(
                [
                    FieldProblem(
                        ("id",),
                        f"duplicate id {machine_id!r} (first in row {first[machine_id]})",
                        machine_id,
                        row,
                    )
                ]
            )
        first[machine_id] = row
