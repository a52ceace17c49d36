"""`millwatch-exporter probe`: listen to a port, guess baud rate, format and channels, print a config block.

The technician at a new machine rarely knows what the sensor sends. `probe` listens for a few
seconds (at each common baud rate in turn with `--baud auto`, keeping the first that yields clean
text lines), then tries the formats the exporter reads — `json`, `kv`, `csv` (`,`, `;` or tab;
a header line names the fields) — and, when none fits, writes a `regex` whose named groups catch
each number of the first line, named after the label just before it. The result is a `serial:` /
`channels:` block that passes the exporter's own validation, to paste into exporter.yaml and
adjust (metric names need their unit).

A polled sensor says nothing until asked: with `--command READ` probe sends that command every
`POLL_EVERY` seconds while it listens, and the block says `mode: poll` with that command.
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from exporter.config import DEFAULT_ALIASES, DEFAULT_CHANNELS, READING_KEY, SerialConfig, parse_config
from exporter.errors import LineParseError
from exporter.formats.common import NUMBER, is_number
from exporter.formats.json import JsonFormat
from exporter.formats.kv import parse_kv
from exporter.framing import LineFramer
from exporter.serial_port import Opener, open_port

COMMON_BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 4800, 2400, 1200)
ENOUGH_LINES = 20
"""Stop listening at one rate once this many lines came in (enough to catch a repeated CSV header)."""
MIN_CLEAN_LINES = 3
MAX_PROBE_LINE = 4096
POLL_EVERY = 0.2
"""Seconds between commands while probing a polled sensor."""
_SEPARATORS = (",", ";", "\t")
_NUMBER_GROUP = r"[-+]?\d+(?:\.\d+)?"


@dataclass
class Guess:
    """What probe found: the settings and the reading keys, and the lines it based them on."""

    baudrate: int
    format: str
    keys: list[str]
    lines: list[str]
    fields: list[str | None] = field(default_factory=list)
    separator: str = ","
    pattern: str | None = None
    command: str | None = None


class ProbeError(Exception):
    """Nothing usable was received (with what was tried)."""


def listen(
    port: str,
    baudrate: int,
    seconds: float,
    opener: Opener | None = None,
    clock: Callable[[], float] = time.monotonic,
    command: str | None = None,
) -> list[bytes]:
    """The complete non-blank lines received within `seconds` (at most ENOUGH_LINES); with
    `command`, that command is sent every POLL_EVERY seconds meanwhile."""
    config = SerialConfig(port=port, baudrate=baudrate, read_timeout=0.2, mode="poll", command=command)
    handle = open_port(config, opener)
    framer = LineFramer(MAX_PROBE_LINE, "auto")
    lines: list[bytes] = []
    deadline = clock() + seconds
    next_command = clock()
    try:
        while clock() < deadline and len(lines) < ENOUGH_LINES:
            if command is not None and clock() >= next_command:
                handle.write(config.command_bytes)
                next_command = clock() + POLL_EVERY
            data = handle.read(handle.in_waiting or 1)
            for frame in framer.feed(bytes(data)):
                if isinstance(frame, bytes) and frame.strip():
                    lines.append(frame)
    finally:
        handle.close()
    return lines


def clean_lines(raw: Sequence[bytes]) -> list[str]:
    """The lines that are readable text (UTF-8, printable): what a right baud rate gives."""
    clean: list[str] = []
    for line in raw:
        try:
            text = line.decode("utf-8").strip()
        except UnicodeDecodeError:
            continue
        if text and sum(ch.isprintable() for ch in text) >= 0.95 * len(text):
            clean.append(text)
    return clean


def probe(
    port: str,
    baudrates: Sequence[int],
    seconds: float,
    opener: Opener | None = None,
    report: Callable[[str], None] = lambda message: None,
    command: str | None = None,
) -> Guess:
    """Listen at each of `baudrates` until one gives clean lines, then guess. Raises ProbeError.

    With `command`, the sensor is polled with it while probe listens (see `listen`)."""
    best: tuple[int, list[str]] | None = None
    for baudrate in baudrates:
        report(f"listening on {port} at {baudrate} baud for up to {seconds:g}s ...")
        try:
            raw = listen(port, baudrate, seconds, opener, command=command)
        except Exception as exc:  # SerialException, OSError, ValueError: cannot open this port
            raise ProbeError(f"cannot open {port}: {exc}") from exc
        clean = clean_lines(raw)
        report(f"  {len(raw)} lines, {len(clean)} readable")
        if best is None or len(clean) > len(best[1]):
            best = (baudrate, clean)
        if len(clean) >= MIN_CLEAN_LINES and len(clean) >= 0.8 * len(raw):
            break
    if best is None or not best[1]:
        raise ProbeError(
            f"no readable line received on {port} (tried {', '.join(map(str, baudrates))} baud); "
            + (
                f"does the sensor answer {command!r}?"
                if command
                else "a polled sensor says nothing until asked: try --command with its command"
            )
        )
    guess = guess_format(best[0], best[1])
    guess.command = command
    return guess


def guess_format(baudrate: int, lines: list[str]) -> Guess:
    """The format that reads most of `lines`: json, kv, csv, else a regex built from the first line."""
    data = _fit_json(lines) or _fit_kv(lines)
    if data is not None:
        name, keys = data
        return Guess(baudrate, name, keys, lines)
    csv_guess = _fit_csv(baudrate, lines)
    if csv_guess is not None:
        return csv_guess
    return _regex_guess(baudrate, lines)


def _share_ok(count: int, total: int) -> bool:
    return total > 0 and count >= max(1, 0.8 * total)


def _fit_json(lines: list[str]) -> tuple[str, list[str]] | None:
    fmt = JsonFormat({}, lambda key, why: None)
    keys: dict[str, None] = {}
    good = 0
    for line in lines:
        try:
            keys.update(dict.fromkeys(DEFAULT_ALIASES.get(k, k) for k in fmt.parse(line)))
            good += 1
        except LineParseError:
            continue
    return ("json", list(keys)) if _share_ok(good, len(lines)) else None


def _fit_kv(lines: list[str]) -> tuple[str, list[str]] | None:
    keys: dict[str, None] = {}
    good = 0
    for line in lines:
        try:
            keys.update(dict.fromkeys(parse_kv(line, DEFAULT_ALIASES)))
            good += 1
        except LineParseError:
            continue
    return ("kv", list(keys)) if _share_ok(good, len(lines)) else None


def _fit_csv(baudrate: int, lines: list[str]) -> Guess | None:
    for separator in _SEPARATORS:
        rows = [next(csv.reader([line], delimiter=separator), []) for line in lines]
        widths = {len(row) for row in rows if any(is_number(cell) for cell in row)}
        if len(widths) != 1 or min(widths) < 2:
            continue
        width = widths.pop()
        data = [row for row in rows if len(row) == width and any(is_number(cell) for cell in row)]
        headers = [row for row in rows if len(row) == width and not any(is_number(cell) for cell in row)]
        if not _share_ok(len(data) + len(headers), len(rows)) or not data:
            continue
        numeric = [all(is_number(row[i]) for row in data) for i in range(width)]
        names = [_key(headers[0][i]) if headers else f"field{i + 1}" for i in range(width)]
        fields: list[str | None] = [
            _unique(name, names[:i]) if numeric[i] else None for i, name in enumerate(names)
        ]
        keys = [DEFAULT_ALIASES.get(f, f) for f in fields if f is not None]
        if not keys:
            continue
        return Guess(baudrate, "csv", keys, lines, fields=fields, separator=separator)
    return None


def _regex_guess(baudrate: int, lines: list[str]) -> Guess:
    first = lines[0]
    pattern: list[str] = []
    names: list[str] = []
    position = 0
    for match in NUMBER.finditer(first):
        before = first[position : match.start()]
        label = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", before)
        # The label keeps its case so the default aliases apply (T -> temperature).
        name = _unique(label[-1] if label else f"value{len(names) + 1}", names)
        names.append(name)
        pattern.append(_literal(before))
        pattern.append(f"(?P<{name}>{_NUMBER_GROUP})")
        position = match.end()
    if not names:
        raise ProbeError(f"the lines hold no number; first line: {first[:80]!r}")
    keys = [DEFAULT_ALIASES.get(name, name) for name in names]
    return Guess(baudrate, "regex", keys, lines, pattern="".join(pattern))


def _literal(text: str) -> str:
    return r"\s+".join(re.escape(part) for part in text.split(" ")) if text else ""


def _key(text: str) -> str:
    key = re.sub(r"[^a-z0-9_]+", "_", text.strip().lower()).strip("_")
    if not key or not READING_KEY.match(key):
        key = "value_" + key if key else "value"
    return key


def _unique(name: str, taken: Sequence[str | None]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    return candidate


def _quote(text: str) -> str:
    """A YAML single-quoted scalar (no escapes: backslashes in a pattern stay as written)."""
    return "'" + text.replace("'", "''") + "'"


def config_block(port: str, guess: Guess) -> str:
    """The `serial:` and `channels:` YAML for `guess`, commented, ready to paste."""
    known = {c.key: c for c in DEFAULT_CHANNELS}
    lines = [
        f"# probed: {len(guess.lines)} lines at {guess.baudrate} baud; first: {guess.lines[0][:60]!r}",
        "serial:",
        f"  port: {_quote(port)}",
        f"  baudrate: {guess.baudrate}",
        f"  format: {guess.format}",
    ]
    if guess.format == "csv":
        fields = ", ".join("null" if f is None else _quote(f) for f in guess.fields)
        lines.append(f"  fields: [{fields}]")
        if guess.separator != ",":
            lines.append(f"  separator: {json.dumps(guess.separator)}")
    if guess.pattern is not None:
        lines.append(f"  pattern: {_quote(guess.pattern)}")
    if guess.command is not None:
        lines += ["  mode: poll", f"  command: {json.dumps(guess.command)}", "  every: 5s"]
    lines.append("channels:                  # rename metrics as machine_<what>_<unit>; null drops a channel")
    for key in dict.fromkeys(guess.keys):
        metric = known[key].metric if key in known else "machine_" + re.sub(r"[^a-z0-9_]", "_", key.lower())
        lines.append(f"  {key}: {{metric: {metric}}}")
    for key in known:
        if key not in guess.keys:
            lines.append(f"  {key}: null    # a default channel not seen in the probed lines")
    return "\n".join(lines) + "\n"


def check_block(block: str) -> None:
    """Raise ConfigError if `block` (with a machine id) does not pass the exporter's validation."""
    from millwatch_common.yamltext import load_roundtrip

    data: Any = load_roundtrip(block)
    data["machine"] = {"id": "probe"}
    parse_config(data, "probe output")
