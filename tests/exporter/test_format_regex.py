"""The `regex` line format: named groups of `serial.pattern` read a vendor's text."""

from __future__ import annotations

import pytest
from exporter_helpers import MakeApp, MakeSensor, scrape, wait_until

from exporter.config import SerialConfig
from exporter.errors import LineParseError
from exporter.formats import make_format
from exporter.simulator import VENDOR_PATTERN


def test_named_groups_are_the_readings() -> None:
    fmt = make_format(SerialConfig(port="x", format="regex", pattern=VENDOR_PATTERN))
    line = "ACME-7 T:072.5C P:1.020bar N:01480rpm ST:OK"
    assert fmt.parse(line) == {"temperature": 72.5, "pressure": 1.02, "speed": 1480.0}


def test_an_optional_group_that_did_not_match_is_left_out() -> None:
    fmt = make_format(
        SerialConfig(port="x", format="regex", pattern=r"T=(?P<T>[\d.]+)(?: H=(?P<humidity>\d+))?")
    )
    assert fmt.parse("T=20.5") == {"temperature": 20.5}  # default alias T -> temperature
    assert fmt.parse("T=20.5 H=40") == {"temperature": 20.5, "humidity": 40.0}


@pytest.mark.parametrize(("line", "reason"), [("hello", "no_match"), ("T:--C P:1bar N:1rpm", "bad_number")])
def test_lines_that_do_not_fit_are_rejected_with_a_reason(line: str, reason: str) -> None:
    fmt = make_format(
        SerialConfig(
            port="x", format="regex", pattern=r"T:(?P<temperature>[-\d.]+)C P:(?P<pressure>[\d.]+)bar"
        )
    )
    with pytest.raises(LineParseError) as caught:
        fmt.parse(line)
    assert caught.value.reason == reason


def test_vendor_lines_on_a_pty_reach_metrics(make_sensor: MakeSensor, make_app: MakeApp) -> None:
    sensor = make_sensor(line_format="vendor")
    app = make_app(sensor.path, format="regex", pattern=VENDOR_PATTERN)

    def values() -> dict[str, float]:
        got = scrape(app.url)
        assert "machine_pressure_bar" in got, got
        return got

    got = wait_until(values, what="regex readings on /metrics")
    assert 40 < got["machine_temperature_celsius"] < 110
    assert 0.5 < got["machine_pressure_bar"] < 1.5
    assert 1000 < got["machine_speed_rpm"] < 2000
    assert got['millwatch_serial_errors_total{reason="parse"}'] == 0
