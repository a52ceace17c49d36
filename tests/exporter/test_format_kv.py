"""The kv line parser: what a sensor line becomes, and which lines are refused."""

from __future__ import annotations

import pytest

from exporter.config import DEFAULT_ALIASES
from exporter.errors import LineParseError
from exporter.formats.kv import parse_kv


@pytest.mark.parametrize(
    "line",
    [
        "temperature=72.5 pressure=1.02 speed=1480",
        "temperature=72.5,pressure=1.02,speed=1480",
        "temperature=72.5;pressure=1.02;speed=1480",
        "temperature:72.5 pressure:1.02 speed:1480",
        "temperature = 72.5, pressure: 1.02 ;  speed=1480",
        "  temperature=72.5\tpressure=1.02 speed=1480 \r",
        "T=72.5 P=1.02 S=1480",
        "T=72.5 P=1.02 RPM=1480",
        "temperature=7.25e1 pressure=+1.02 speed=1480.",
    ],
)
def test_the_same_reading_in_every_accepted_spelling(line: str) -> None:
    assert parse_kv(line, DEFAULT_ALIASES) == {"temperature": 72.5, "pressure": 1.02, "speed": 1480.0}


def test_negative_values_unknown_keys_and_repeated_keys() -> None:
    readings = parse_kv("temperature=-12.5 humidity=.4 zone-2.flow=3 temperature=-13", DEFAULT_ALIASES)
    assert readings == {"temperature": -13.0, "humidity": 0.4, "zone-2.flow": 3.0}


def test_configured_aliases_replace_the_defaults() -> None:
    assert parse_kv("TMP=1 T=2", {"TMP": "temperature"}) == {"temperature": 1.0, "T": 2.0}
    assert parse_kv("t=1", DEFAULT_ALIASES) == {"t": 1.0}, "aliases are case-sensitive"


@pytest.mark.parametrize(
    ("line", "reason", "quoted"),
    [
        ("", "empty", ""),
        (" ,; \r", "empty", ""),
        ("temperature=abc", "bad_number", "'abc'"),
        ("temperature=", "bad_number", "''"),
        ("speed=1480rpm", "bad_number", "'1480rpm'"),
        ("temperature=nan", "bad_number", "'nan'"),
        ("temperature=inf", "bad_number", "'inf'"),
        ("temperature=1e999", "bad_number", "'1e999'"),
        ("temperature=72.5.1", "bad_number", "'72.5.1'"),
        ("temperature==72", "bad_number", "'=72'"),
        ("=72.5", "bad_token", "'=72.5'"),
        ("ERR 42", "bad_token", "'ERR'"),
        ("temperature=72.5 garbage", "bad_token", "'garbage'"),
        ("temperature=72\x002", "bad_number", "'72\\x002'"),
    ],
)
def test_bad_lines_are_refused_with_a_reason(line: str, reason: str, quoted: str) -> None:
    with pytest.raises(LineParseError) as caught:
        parse_kv(line, DEFAULT_ALIASES)
    assert caught.value.reason == reason
    assert quoted in caught.value.detail
    assert str(caught.value).startswith(f"{reason}: ")


def test_a_line_with_one_bad_pair_yields_nothing() -> None:
    """A corrupted pair must not let the rest of the line through as a plausible partial reading."""
    with pytest.raises(LineParseError):
        parse_kv("temperature=72.5 pressure=1.0x2 speed=1480", DEFAULT_ALIASES)


def test_long_offending_tokens_are_shortened_in_the_message() -> None:
    with pytest.raises(LineParseError) as caught:
        parse_kv("x" * 500, DEFAULT_ALIASES)
    assert len(str(caught.value)) < 100
