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
from dataclasses import dataclass, field

from scraper.errors import BadExposition, LimitExceeded, SampleLimitExceeded
from scraper.limits import ScrapeLimits

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


def parse_exposition(
    text: str, sample_limit: int | None = None, limits: ScrapeLimits | None = None
) -> list[Sample]:
    """Parse a whole exposition into samples, in input order.

    Raises `BadExposition` (with the line number) for any syntax error, a line longer than
    `MAX_LINE_LENGTH`, a NUL character or a duplicate label name; `SampleLimitExceeded` as soon as
    more than `sample_limit` samples are found (None: no limit, or the one of `limits`), and
    `LimitExceeded` at the first sample over one of `limits` (None: only the sample limit).
    """
    if sample_limit is None and limits is not None:
        sample_limit = limits.sample_limit
    nul = text.find("\x00")
    nul_line = 0 if nul < 0 else text.count("\n", 0, nul) + 1
    samples: list[Sample] = []
    created_bases: set[str] = set()
    plain, labelled = _FAST_PLAIN.fullmatch, _FAST_LABELLED.fullmatch
    for number, raw in enumerate(text.split("\n"), start=1):
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
            _comment(number, stripped, created_bases)
            continue
        sample: Sample | None = None
        match = plain(stripped)
        if match is not None:
            sample = Sample(match[1], {}, float(match[2]))
        else:
            match = labelled(stripped)
            if match is not None:
                pairs = _FAST_PAIR.findall(match[2])
                labels = dict(pairs)
                if len(labels) == len(pairs):  # else a duplicate: the careful parser names it
                    sample = Sample(match[1], labels, float(match[3]))
        if sample is None:
            sample = _sample(number, stripped)
        if sample.name.endswith("_created") and sample.name[: -len("_created")] in created_bases:
            continue
        if limits is not None:
            _check_limits(sample, limits)
        samples.append(sample)
        if sample_limit is not None and len(samples) > sample_limit:
            raise SampleLimitExceeded(sample_limit)
    return samples


def _check_limits(sample: Sample, limits: ScrapeLimits) -> None:
    name = sample.name
    if len(name) > limits.metric_name_length_limit:
        raise LimitExceeded("metric_name_length_limit", limits.metric_name_length_limit, name)
    labels = sample.labels
    if not labels:
        return
    if len(labels) > limits.label_limit:
        raise LimitExceeded("label_limit", limits.label_limit, name)
    # The longest name and value measured in C (map/max), not in a Python loop per label: this
    # check runs for every sample of every scrape.
    if max(map(len, labels)) > limits.label_name_length_limit:
        raise LimitExceeded("label_name_length_limit", limits.label_name_length_limit, name)
    if max(map(len, labels.values())) > limits.label_value_length_limit:
        raise LimitExceeded("label_value_length_limit", limits.label_value_length_limit, name)


def _comment(number: int, line: str, created_bases: set[str]) -> None:
    parts = line[1:].lstrip(" \t").split(None, 2)
    if not parts or parts[0] not in ("HELP", "TYPE"):
        return  # a free comment
    if len(parts) < 2 or not _METRIC_NAME.fullmatch(parts[1]):
        raise BadExposition(number, f"# {parts[0]} without a valid metric name")
    if parts[0] == "TYPE":
        kind = parts[2].strip() if len(parts) > 2 else ""
        if kind not in _TYPES:
            raise BadExposition(number, f"unknown metric type {kind[:40]!r}")
        if kind in _HAS_CREATED:
            name = parts[1]
            created_bases.add(name)
            if kind == "counter" and name.endswith("_total"):
                created_bases.add(name[: -len("_total")])


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
