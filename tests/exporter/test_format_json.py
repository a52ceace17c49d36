"""The `json` line format: one object per line, nested keys flattened with `_`, non-numbers skipped."""

from __future__ import annotations

from pathlib import Path

import pytest
from exporter_helpers import MakeApp, MakeSensor, RawPty, scrape, wait_until

from exporter.config import SerialConfig
from exporter.errors import LineParseError
from exporter.formats import make_format


def parse(line: str, aliases: dict[str, str] | None = None) -> tuple[dict[str, float], list[str]]:
    skipped: list[str] = []
    config = SerialConfig(port="x", format="json", aliases=aliases or {})
    fmt = make_format(config, lambda key, why: skipped.append(key))
    return fmt.parse(line), skipped


def test_numbers_are_read_and_nested_keys_flattened() -> None:
    values, skipped = parse('{"temperature": 72.5, "spindle": {"rpm": 1480, "load": {"pct": 40}}, "n": -3}')
    assert values == {"temperature": 72.5, "spindle_rpm": 1480.0, "spindle_load_pct": 40.0, "n": -3.0}
    assert skipped == []


def test_values_that_are_not_numbers_are_skipped_and_reported() -> None:
    values, skipped = parse(
        '{"T": 70, "status": "ok", "alarm": false, "list": [1, 2], "none": null}', {"T": "temperature"}
    )
    assert values == {"temperature": 70.0}
    assert skipped == ["status", "alarm", "list", "none"]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("temperature=72.5", "not_json"),
        ('{"temperature": 72.5', "not_json"),
        ("[1, 2, 3]", "not_object"),
        ('"hello"', "not_object"),
        ('{"status": "ok"}', "no_number"),
        ('{"temperature": NaN}', "bad_number"),
        ('{"temperature": Infinity}', "bad_number"),
        ('{"temperature": ' + "9" * 400 + "}", "bad_number"),
        ("[" * 5000 + "]" * 5000, "not_json"),
    ],
)
def test_lines_without_a_usable_number_are_rejected_with_a_reason(line: str, reason: str) -> None:
    with pytest.raises(LineParseError) as caught:
        parse(line)
    assert caught.value.reason == reason


def test_json_lines_on_a_pty_reach_metrics(
    make_sensor: MakeSensor, make_app: MakeApp, tmp_path: Path
) -> None:
    sensor = make_sensor(line_format="json")
    app = make_app(sensor.path, format="json")

    def values() -> dict[str, float]:
        got = scrape(app.url)
        assert "machine_temperature_celsius" in got, got
        return got

    got = wait_until(values, what="json readings on /metrics")
    assert 40 < got["machine_temperature_celsius"] < 110
    assert 0.5 < got["machine_pressure_bar"] < 1.5
    assert 1000 < got["machine_speed_rpm"] < 2000
    assert got['millwatch_serial_errors_total{reason="parse"}'] == 0


def test_a_hostile_json_device_is_counted_and_the_good_line_read(raw_pty: RawPty, make_app: MakeApp) -> None:
    app = make_app(raw_pty.path, format="json")
    wait_until(lambda: app.reader.connected)
    raw_pty.write(
        b'{"temperature": "hot"}\n[1]\n{"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}\n'
    )
    raw_pty.write(b'{"temperature": 61.5, "state": "run"}\n')
    got = wait_until(lambda: scrape(app.url).get("machine_temperature_celsius") == 61.5 and scrape(app.url))
    # Three lines without a number: a text only, a list, and one whose only number is nested too deep.
    assert got['millwatch_serial_errors_total{reason="parse"}'] == 3
    assert got['millwatch_serial_errors_total{reason="skipped_value"}'] == 3  # "hot", too deep, "run"
