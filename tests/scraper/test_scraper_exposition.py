"""The one exposition parser: real prometheus_client output, the format's corners, hostile input."""

from __future__ import annotations

import math
import random

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client.parser import text_string_to_metric_families
from scraper_helpers import mangled

from scraper.errors import BadExposition, SampleLimitExceeded
from scraper.exposition import MAX_LINE_LENGTH, Sample, parse_exposition


def full_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    requests = Counter("http_requests", "Requests.", ["method", "path"], registry=registry)
    requests.labels("GET", "/metrics").inc(3)
    requests.labels("POST", 'we"ird\\path\nwith newline').inc()
    Gauge("machine_temperature_celsius", "Temperature.", registry=registry).set(72.5)
    Gauge("machine_nan", "Not a number.", registry=registry).set(float("nan"))
    Gauge("machine_inf", "Infinite.", ["sign"], registry=registry).labels("plus").set(float("inf"))
    Gauge("machine_minus_inf", "Minus infinite.", registry=registry).set(float("-inf"))
    latency = Histogram("scrape_latency_seconds", "Latency.", registry=registry, buckets=(0.1, 1.0))
    latency.observe(0.05)
    latency.observe(2.5)
    Summary("payload_bytes", "Payload.", registry=registry).observe(512)
    Info("exporter_build", "Build.", registry=registry).info({"version": "1.2.3", "revision": "abc"})
    Enum("serial_state", "State.", states=["open", "closed"], registry=registry).state("open")
    return registry


def as_tuples(samples: list[Sample]) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
    return [(s.name, tuple(sorted(s.labels.items())), s.value) for s in samples]


def same_values(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_round_trip_of_every_metric_type_matches_prometheus_clients_own_parser() -> None:
    text = generate_latest(full_registry()).decode()
    ours = parse_exposition(text)
    reference = [
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    ]
    mine = as_tuples(ours)
    assert [(n, labels) for n, labels, _ in mine] == [(n, labels) for n, labels, _ in reference]
    assert all(same_values(a[2], b[2]) for a, b in zip(mine, reference, strict=True))
    # Spot checks of what the scraper relies on.
    by_key = {(n, labels): v for n, labels, v in mine}
    assert by_key[("machine_temperature_celsius", ())] == 72.5
    assert by_key[("http_requests_total", (("method", "POST"), ("path", 'we"ird\\path\nwith newline')))] == 1
    assert by_key[("scrape_latency_seconds_bucket", (("le", "+Inf"),))] == 2
    assert math.isnan(by_key[("machine_nan", ())])
    assert by_key[("machine_inf", (("sign", "plus"),))] == math.inf
    assert by_key[("machine_minus_inf", ())] == -math.inf
    assert not any(n.endswith("_created") for n, _, _ in mine), "_created samples are not measurements"


def test_openmetrics_eof_exemplars_and_float_timestamps_are_tolerated() -> None:
    text = (
        "# TYPE requests counter\n"
        "# HELP requests Requests.\n"
        'requests_total{path="/"} 5 1700000000.123 # {trace_id="abc"} 1.0 1700000000.0\n'
        "requests_created 1700000000.0\n"
        "# EOF\n"
        "this is after EOF and ignored\n"
    )
    assert parse_exposition(text) == [Sample("requests_total", {"path": "/"}, 5.0)]


def test_format_corners() -> None:
    text = (
        "\n"
        "# a free comment\n"
        "#\n"
        "# HELP m  help with   spaces and \\\\ escapes\n"
        "# TYPE m gauge\n"
        "m 1\r\n"
        '  m{a="x",} 2 1700000000000\n'
        'm{ a = "y" , b="" } 3\n'
        "m{} -4.5e-3\n"
        "m\t5\n"
        'm{a="#not an exemplar"} 6\n'
        'm{a="ünïcode ✓"} +7\n'
        "m Nan\n"
        "m +inf\n"
    )
    samples = parse_exposition(text)
    assert [s.value for s in samples[:-2]] == [1, 2, 3, -4.5e-3, 5, 6, 7]
    assert samples[1].labels == {"a": "x"}
    assert samples[2].labels == {"a": "y", "b": ""}
    assert samples[5].labels == {"a": "#not an exemplar"}
    assert samples[6].labels == {"a": "ünïcode ✓"}
    assert math.isnan(samples[7].value)
    assert samples[8].value == math.inf


@pytest.mark.parametrize(
    ("text", "line", "detail"),
    [
        ('m{a="unterminated} 1\n', 1, "unterminated value of label a"),
        ('ok 1\nm{a="x" 1\n', 2, "expected ',' or '}'"),
        ("m one\n", 1, "bad value 'one'"),
        ("m 1_000\n", 1, "bad value"),
        ("m 0x10\n", 1, "bad value"),
        ("m\n", 1, "has no value"),
        ("m 1 2 3\n", 1, "unexpected text after the value"),
        ("m 1 soon\n", 1, "bad timestamp"),
        ("m 1 Inf\n", 1, "timestamp must be a finite number"),
        ("1m 1\n", 1, "expected a metric name"),
        ('m{1a="x"} 1\n', 1, "expected a label name"),
        ('m{a="x",a="y"} 1\n', 1, "duplicate label a"),
        ('m{a="\\t"} 1\n', 1, "invalid escape \\t"),
        ('m{a="x\\', 1, "unterminated value"),
        ("m{a} 1\n", 1, "expected '=' after label a"),
        ("m{a=x} 1\n", 1, "expected '\"'"),
        ('m{a="x"}1\n', 1, "unexpected '1' after m"),
        ("m 1\n\x00\n", 2, "NUL character"),
        ("m 1\nm 2\x00\n", 2, "NUL character"),
        ("# TYPE m sometype\n", 1, "unknown metric type 'sometype'"),
        ("# TYPE\n", 1, "# TYPE without a valid metric name"),
        ("# HELP 9bad text\n", 1, "# HELP without a valid metric name"),
        ("<html><body>Hello</body></html>\n", 1, "expected a metric name"),
        ("m " + "9" * 10 + "x\n", 1, "bad value"),
    ],
)
def test_bad_input_is_reported_with_its_line(text: str, line: int, detail: str) -> None:
    with pytest.raises(BadExposition) as caught:
        parse_exposition(text)
    assert caught.value.line == line
    assert detail in caught.value.detail
    assert str(caught.value).startswith(f"bad exposition at line {line}: ")


def test_a_huge_line_is_rejected_not_parsed() -> None:
    huge = 'm{a="' + "x" * (MAX_LINE_LENGTH + 10) + '"} 1\n'
    with pytest.raises(BadExposition, match="line longer than"):
        parse_exposition("ok 1\n" + huge)


def test_sample_limit() -> None:
    text = "".join(f'm{{i="{i}"}} {i}\n' for i in range(11))
    assert len(parse_exposition(text, sample_limit=11)) == 11
    with pytest.raises(SampleLimitExceeded) as caught:
        parse_exposition(text, sample_limit=10)
    assert str(caught.value) == "sample_limit 10 exceeded"


def test_random_mutations_never_raise_anything_but_bad_exposition() -> None:
    """A small deterministic fuzzer: mangled real expositions either parse or raise BadExposition."""
    base = generate_latest(full_registry()).decode()
    alphabet = [
        '"',
        "\\",
        "{",
        "}",
        ",",
        "=",
        " ",
        "\n",
        "#",
        "\x00",
        "é",
        "e",
        "+",
        "-",
        ".",
        "1",
        "\r",
        "\t",
    ]
    rng = random.Random(20251126)
    outcomes = {"parsed": 0, "rejected": 0}
    for _ in range(1500):
        try:
            samples = parse_exposition(mangled(base, rng, alphabet, 6))
        except BadExposition:
            outcomes["rejected"] += 1
        else:
            outcomes["parsed"] += 1
            assert all(isinstance(s.value, float) and isinstance(s.name, str) for s in samples)
    assert outcomes["parsed"] > 0 and outcomes["rejected"] > 0


def test_the_fast_path_gives_what_the_careful_parser_gives() -> None:
    """The common lines take a regular-expression fast path; it must agree with the careful parser."""
    from scraper.exposition import _sample

    lines = [
        line
        for line in generate_latest(full_registry()).decode().splitlines()
        if line and not line.startswith("#")
    ]
    lines += [
        "plain 1",
        "sci 1.5e-3",
        "neg -7",
        "inf +Inf",
        "lower_nan nan",
        'labelled{a="1",b="two words"} 3.25',
        'trailing_comma{a="1",} 4',
        "empty_labels{} 5",
        'spaces_before_value{a="x"}\t6',
        "tabbed\t7",
    ]
    for line in lines:
        (fast,) = parse_exposition(line + "\n")
        careful = _sample(1, line)
        assert (fast.name, fast.labels) == (careful.name, careful.labels), line
        assert fast.value == careful.value or (math.isnan(fast.value) and math.isnan(careful.value)), line
