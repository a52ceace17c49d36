"""The one parser of the Prometheus text exposition format (0.0.4) in millwatch.

Also accepts what an OpenMetrics-speaking exporter sends by mistake or by choice: `# EOF` ends the
input, exemplars (` # {...} value`) are ignored, float timestamps are accepted, and the `_created`
samples of counters, histograms and summaries are dropped (they are not measurements).
Timestamps are parsed for validity and then ignored: the scraper stamps samples with the scrape time.

Anything else that is not valid raises `BadExposition` with the 1-based line number, never any other
exception: the input comes from the network and is treated as hostile. The machine's limits
(`scraper.limits.ScrapeLimits`: samples, labels, name and value lengths) raise `LimitExceeded`.

Speed: the common lines (`name value` and `name{a="b",...} value`, no escapes, no timestamp, no
exemplar) are recognised by one regular expression each, which also checks their syntax; any other
line, or one the fast path does not take, goes through the careful parser below, which gives the
exact error. Both paths give the same samples (tests compare them).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import overload

from scraper.body_template import BodyTemplate
from scraper.errors import BadExposition, LimitExceeded, SampleLimitExceeded
from scraper.limits import ScrapeLimits
from scraper.line_cache import LineCache, SeriesKey, SeriesRef

MAX_LINE_LENGTH = 65536
"""Longer lines are rejected: no sane exporter writes them, and they cost memory per sample."""

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# The spellings Go's strconv.ParseFloat gives Prometheus (NaN, Inf, Infinity in any case), without
# what Python's float() adds (underscores, surrounding spaces).
_FLOAT = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)", re.IGNORECASE)
_TYPES = frozenset(
    {"counter", "gauge", "histogram", "summary", "untyped", "unknown", "info", "stateset", "gaugehistogram"}
)
_HAS_CREATED = frozenset({"counter", "histogram", "summary", "gaugehistogram"})
_NAME_TEXT = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_PAIR_TEXT = r'[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"'
_VALUE_TEXT = _FLOAT.pattern
_FAST_PLAIN = re.compile(rf"({_NAME_TEXT})[ \t]+({_VALUE_TEXT})", re.IGNORECASE)
_FAST_LABELLED = re.compile(
    rf"({_NAME_TEXT})\{{((?:{_PAIR_TEXT}(?:,{_PAIR_TEXT})*,?)?)\}}[ \t]+({_VALUE_TEXT})", re.IGNORECASE
)
_FAST_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"')
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


@dataclass(frozen=True)
class Sample:
    """One sample: metric name, labels (without `__name__`) and value."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    value: float = 0.0


class ParsedSamples(Sequence[Sample]):
    """The samples of one exposition, in input order, as two lists: each sample's `SeriesRef`
    (shared with the line cache and the other samples of its series) and its value.

    Reads as a sequence of `Sample`s for the callers that want them; the scraper's own hot path
    (status rules, store) reads `series` and `values` without making a `Sample` per line.
    """

    __slots__ = ("series", "shape", "values")

    def __init__(
        self, series: list[SeriesRef], values: list[float], shape: BodyTemplate | None = None
    ) -> None:
        self.series = series
        self.values = values
        # The body's template when the samples were read through it (scraper/body_template.py):
        # the same series, in the same order, as every other scrape read through it.
        self.shape = shape

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, index: int) -> Sample: ...
    @overload
    def __getitem__(self, index: slice) -> list[Sample]: ...
    def __getitem__(self, index: int | slice) -> Sample | list[Sample]:
        if isinstance(index, slice):
            return [Sample(r.name, dict(r.labels), v) for r, v in zip(self.series[index], self.values[index])]
        ref = self.series[index]
        return Sample(ref.name, dict(ref.labels), self.values[index])

    def __iter__(self) -> Iterator[Sample]:
        for ref, value in zip(self.series, self.values):
            yield Sample(ref.name, dict(ref.labels), value)

    def keys(self) -> list[SeriesKey]:
        """The store's series key of each sample (built in C: no Python per sample)."""
        return list(map(_KEY, self.series))


_KEY = itemgetter(2)


def parse_exposition(
    text: str, sample_limit: int | None = None, limits: ScrapeLimits | None = None
) -> list[Sample]:
    """Parse a whole exposition into samples, in input order.

    Raises `BadExposition` (with the line number) for any syntax error, a line longer than
    `MAX_LINE_LENGTH`, a NUL character or a duplicate label name; `SampleLimitExceeded` as soon as
    more than `sample_limit` samples are found (None: no limit, or the one of `limits`), and
    `LimitExceeded` at the first sample over one of `limits` (None: only the sample limit).
    """
    return list(parse_samples(text, LineCache(), sample_limit, limits))


def parse_samples(
    text: str, cache: LineCache, sample_limit: int | None = None, limits: ScrapeLimits | None = None
) -> ParsedSamples:
    """`parse_exposition` for one machine's scrape, with its `LineCache`: the same samples, the
    same errors, but the lines the cache knows skip the parsing and the limit checks."""
    if sample_limit is None and limits is not None:
        sample_limit = limits.sample_limit
    if sample_limit is None:
        sample_limit = sys.maxsize
    cache.for_limits(limits)
    lines = text.split("\n")
    slot = cache.template
    if slot.template is not None:
        # The body as the last one but for its values: read in a few C calls (body_template.py).
        fitted = slot.template.values(lines, len(text), MAX_LINE_LENGTH)
        if fitted is not None:
            if len(fitted) > sample_limit:
                raise SampleLimitExceeded(sample_limit)
            slot.hit()
            return ParsedSamples(slot.template.series, fitted, slot.template)
        slot.missed()
    parsed = _parse_lines(text, lines, cache, sample_limit, limits)
    slot.make(lines, parsed.series, cache.series)
    return parsed


def _parse_lines(
    text: str, lines: list[str], cache: LineCache, sample_limit: int, limits: ScrapeLimits | None
) -> ParsedSamples:
    """`parse_samples` line by line: the cached way for the lines the cache knows, the careful
    way for the others (which fills the cache)."""
    known, known_comments = cache.series, cache.comments
    nul = text.find("\x00")
    nul_line = 0 if nul < 0 else text.count("\n", 0, nul) + 1
    series: list[SeriesRef] = []
    values: list[float] = []
    add_series, add_value = series.append, values.append
    created_bases: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        if raw[:1] == "#":
            meaning = known_comments.get(raw)
            if meaning is not None:
                created_bases.update(meaning)
                continue
        else:
            # The cached way: `prefix value`, the prefix known, the value text one float() takes
            # as the format does (ASCII, no space, control character or underscore, which float()
            # would accept). Any other line goes the careful way below, which raises the errors.
            prefix, _, value_text = raw.rpartition(" ")
            ref = known.get(prefix)
            if (
                ref is not None
                and value_text.isascii()
                and value_text.isprintable()
                and "_" not in value_text
                and len(raw) <= MAX_LINE_LENGTH
            ):
                try:
                    value = float(value_text)
                except ValueError:
                    pass
                else:
                    if ref.created_base is not None and ref.created_base in created_bases:
                        continue
                    add_series(ref)
                    add_value(value)
                    if len(values) > sample_limit:
                        raise SampleLimitExceeded(sample_limit)
                    continue
        line = raw[:-1] if raw.endswith("\r") else raw
        if len(line) > MAX_LINE_LENGTH:
            raise BadExposition(number, f"line longer than {MAX_LINE_LENGTH} characters")
        if number == nul_line:
            raise BadExposition(number, "NUL character")
        stripped = line.strip(" \t")
        if not stripped:
            continue
        if stripped[0] == "#":
            if stripped == "# EOF":
                break
            meaning = _comment(number, stripped)
            cache.add_comment(raw, meaning)
            created_bases.update(meaning)
            continue
        parsed = _parse_sample(number, stripped, cache, limits, created_bases)
        if parsed is None:
            continue  # a `_created` sample
        add_series(parsed[0])
        add_value(parsed[1])
        if len(values) > sample_limit:
            raise SampleLimitExceeded(sample_limit)
    return ParsedSamples(series, values)


def _parse_sample(
    number: int, line: str, cache: LineCache, limits: ScrapeLimits | None, created_bases: set[str]
) -> tuple[SeriesRef, float] | None:
    """A sample line the cache does not know: its series and value, None for a `_created` sample.

    Checks the line and the limits; remembers the line's prefix in the cache when the line is
    `prefix value` (what the cached way reads), also for a dropped `_created` sample.
    """
    name: str | None = None
    labels: dict[str, str] = {}
    prefix: str | None = None
    value = 0.0
    match = _FAST_PLAIN.fullmatch(line)
    if match is not None:
        name, value = match[1], float(match[2])
        prefix = _prefix(line, match)
    else:
        match = _FAST_LABELLED.fullmatch(line)
        if match is not None:
            pairs = _FAST_PAIR.findall(match[2])
            labels = dict(pairs)
            if len(labels) == len(pairs):  # else a duplicate: the careful parser names it
                name, value = match[1], float(match[3])
                prefix = _prefix(line, match)
    if name is None:
        sample = _sample(number, line)
        name, labels, value = sample.name, sample.labels, sample.value
    if name.endswith("_created") and name[: -len("_created")] in created_bases:
        # Not a measurement: its limits are not checked, but the cache may still learn its line.
        if prefix is not None and (limits is None or _within_limits(name, labels, limits)):
            cache.add_series(prefix, name, labels)
        return None
    if limits is not None:
        _check_limits(name, labels, limits)
    if prefix is None:
        return SeriesRef.of(name, labels), value
    return cache.add_series(prefix, name, labels), value


def _prefix(line: str, match: re.Match[str]) -> str | None:
    """The text before the value when one space separates them (the cached way's split), else None."""
    start = match.start(match.lastindex or 0)
    return line[: start - 1] if line[start - 1] == " " else None


def _within_limits(name: str, labels: dict[str, str], limits: ScrapeLimits) -> bool:
    try:
        _check_limits(name, labels, limits)
    except LimitExceeded:
        return False
    return True


def _check_limits(name: str, labels: dict[str, str], limits: ScrapeLimits) -> None:
    if len(name) > limits.metric_name_length_limit:
        raise LimitExceeded("metric_name_length_limit", limits.metric_name_length_limit, name)
    if not labels:
        return
    if len(labels) > limits.label_limit:
        raise LimitExceeded("label_limit", limits.label_limit, name)
    # The longest name and value measured in C (map/max), not in a Python loop per label.
    if max(map(len, labels)) > limits.label_name_length_limit:
        raise LimitExceeded("label_name_length_limit", limits.label_name_length_limit, name)
    if max(map(len, labels.values())) > limits.label_value_length_limit:
        raise LimitExceeded("label_value_length_limit", limits.label_value_length_limit, name)


def _comment(number: int, line: str) -> tuple[str, ...]:
    """Check a comment line; returns the metric names whose `_created` samples it makes drop."""
    parts = line[1:].lstrip(" \t").split(None, 2)
    if not parts or parts[0] not in ("HELP", "TYPE"):
        return ()  # a free comment
    if len(parts) < 2 or not _METRIC_NAME.fullmatch(parts[1]):
        raise BadExposition(number, f"# {parts[0]} without a valid metric name")
    if parts[0] != "TYPE":
        return ()
    kind = parts[2].strip() if len(parts) > 2 else ""
    if kind not in _TYPES:
        raise BadExposition(number, f"unknown metric type {kind[:40]!r}")
    if kind not in _HAS_CREATED:
        return ()
    name = parts[1]
    if kind == "counter" and name.endswith("_total"):
        return (name, name[: -len("_total")])
    return (name,)


def _sample(number: int, line: str) -> Sample:
    match = _METRIC_NAME.match(line)
    if match is None:
        raise BadExposition(number, f"expected a metric name, found {line[:20].rstrip()!r}")
    name = match.group()
    pos = match.end()
    labels: dict[str, str] = {}
    if pos < len(line) and line[pos] == "{":
        labels, pos = _labels(number, line, pos + 1)
    rest = line[pos:]
    if rest and rest[0] not in " \t":
        raise BadExposition(number, f"unexpected {rest[0]!r} after {name}")
    # An OpenMetrics exemplar follows " # "; it is not part of the sample.
    hash_at = rest.find("#")
    if hash_at >= 0:
        rest = rest[:hash_at]
    fields = rest.split()
    if not fields:
        raise BadExposition(number, f"{name} has no value")
    if len(fields) > 2:
        raise BadExposition(number, f"unexpected text after the value of {name}")
    value = _float(number, fields[0], "value")
    if len(fields) == 2:
        timestamp = _float(number, fields[1], "timestamp")
        if not math.isfinite(timestamp):
            raise BadExposition(number, "timestamp must be a finite number")
    return Sample(name, labels, value)


def _labels(number: int, line: str, pos: int) -> tuple[dict[str, str], int]:
    """Parse `name="value", ...}` starting after `{`; returns the labels and the position after `}`."""
    labels: dict[str, str] = {}
    end = len(line)
    while True:
        while pos < end and line[pos] in " \t":
            pos += 1
        if pos < end and line[pos] == "}":
            return labels, pos + 1
        match = _LABEL_NAME.match(line, pos)
        if match is None:
            raise BadExposition(number, "expected a label name or '}'")
        label = match.group()
        pos = match.end()
        while pos < end and line[pos] in " \t":
            pos += 1
        if pos >= end or line[pos] != "=":
            raise BadExposition(number, f"expected '=' after label {label}")
        pos += 1
        while pos < end and line[pos] in " \t":
            pos += 1
        if pos >= end or line[pos] != '"':
            raise BadExposition(number, f"expected '\"' to open the value of label {label}")
        value, pos = _label_value(number, line, pos + 1, label)
        if label in labels:
            raise BadExposition(number, f"duplicate label {label}")
        labels[label] = value
        while pos < end and line[pos] in " \t":
            pos += 1
        if pos < end and line[pos] == ",":
            pos += 1
        elif pos < end and line[pos] == "}":
            return labels, pos + 1
        else:
            raise BadExposition(number, "expected ',' or '}' after a label value")


def _label_value(number: int, line: str, pos: int, label: str) -> tuple[str, int]:
    """Read an escaped label value up to its closing quote; returns it and the position after it."""
    chunks: list[str] = []
    end = len(line)
    while True:
        stop = _next_special(line, pos)
        if stop < 0:
            raise BadExposition(number, f"unterminated value of label {label}")
        chunks.append(line[pos:stop])
        if line[stop] == '"':
            return "".join(chunks), stop + 1
        if stop + 1 >= end:
            raise BadExposition(number, f"unterminated value of label {label}")
        escaped = _ESCAPES.get(line[stop + 1])
        if escaped is None:
            raise BadExposition(number, f"invalid escape \\{line[stop + 1]} in label {label}")
        chunks.append(escaped)
        pos = stop + 2


def _next_special(line: str, pos: int) -> int:
    quote = line.find('"', pos)
    backslash = line.find("\\", pos)
    if backslash < 0:
        return quote
    if quote < 0:
        return backslash
    return min(quote, backslash)


def _float(number: int, text: str, what: str) -> float:
    if not _FLOAT.fullmatch(text):
        raise BadExposition(number, f"bad {what} {text[:40]!r}")
    try:
        return float(text)
    except (ValueError, OverflowError) as e:  # pragma: no cover - the pattern admits only floats
        raise BadExposition(number, f"bad {what} {text[:40]!r}") from e
