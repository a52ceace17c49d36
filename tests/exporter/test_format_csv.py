"""The `csv` line format: field order from `serial.fields`, header lines skipped, separator configurable."""

from __future__ import annotations

import pytest
from exporter_helpers import MakeApp, MakeSensor, RawPty, scrape, wait_until

from exporter.config import SerialConfig
from exporter.errors import LineIgnored, LineParseError
from exporter.formats import make_format


def test_cells_are_named_in_the_configured_order() -> None:
    fmt = make_format(SerialConfig(port="x", format="csv", fields=("temperature", None, "speed")))
    assert fmt.parse("72.5,RUN,1480") == {"temperature": 72.5, "speed": 1480.0}
    assert fmt.parse(' 72.5 ,"x, y", 1480 ') == {"temperature": 72.5, "speed": 1480.0}


def test_the_separator_is_configurable() -> None:
    fmt = make_format(SerialConfig(port="x", format="csv", fields=("temperature", "pressure"), separator=";"))
    assert fmt.parse("72.5;1.02") == {"temperature": 72.5, "pressure": 1.02}
    tabbed = make_format(SerialConfig(port="x", format="csv", fields=("T", "P"), separator="\t"))
    assert tabbed.parse("72.5\t1.02") == {"temperature": 72.5, "pressure": 1.02}  # default aliases apply


def test_a_header_line_is_skipped_unless_headers_are_switched_off() -> None:
    fmt = make_format(SerialConfig(port="x", format="csv", fields=("temperature", "pressure")))
    with pytest.raises(LineIgnored):
        fmt.parse("Temperature [C],Pressure [bar]")
    with pytest.raises(LineParseError):
        fmt.parse(",")  # empty cells are not titles
    with pytest.raises(LineParseError):
        fmt.parse("ERR sensor fault")  # one cell for two fields: not a header either
    strict = make_format(
        SerialConfig(port="x", format="csv", fields=("temperature", "pressure"), header="none")
    )
    with pytest.raises(LineParseError) as caught:
        strict.parse("Temperature [C],Pressure [bar]")
    assert caught.value.reason == "bad_number"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("72.5", "field_count"),
        ("72.5,1.0,3", "field_count"),
        ("72.5,abc", "bad_number"),
        ("72.5,1e999", "bad_number"),
    ],
)
def test_bad_lines_are_rejected_with_a_reason(line: str, reason: str) -> None:
    fmt = make_format(SerialConfig(port="x", format="csv", fields=("temperature", "pressure")))
    with pytest.raises(LineParseError) as caught:
        fmt.parse(line)
    assert caught.value.reason == reason


def test_csv_lines_with_a_header_on_a_pty_reach_metrics(make_sensor: MakeSensor, make_app: MakeApp) -> None:
    sensor = make_sensor(line_format="csv", csv_header=True, interval=0.1)
    app = make_app(sensor.path, format="csv", fields=["temperature", "pressure", "speed"])

    def values() -> dict[str, float]:
        got = scrape(app.url)
        assert "machine_speed_rpm" in got, got
        return got

    got = wait_until(values, what="csv readings on /metrics")
    assert 40 < got["machine_temperature_celsius"] < 110
    assert 0.5 < got["machine_pressure_bar"] < 1.5
    assert 1000 < got["machine_speed_rpm"] < 2000
    assert got['millwatch_serial_errors_total{reason="parse"}'] == 0


def test_a_header_written_after_reconnect_is_not_an_error(raw_pty: RawPty, make_app: MakeApp) -> None:
    app = make_app(raw_pty.path, format="csv", fields=["temperature", None], separator=";")
    wait_until(lambda: app.reader.connected)
    raw_pty.write(b"temperature;state\r\n70.5;RUN\r\n71;\r\n")
    got = wait_until(lambda: scrape(app.url).get("machine_temperature_celsius") == 71.0 and scrape(app.url))
    assert got["millwatch_serial_readings_total"] == 2
    assert got['millwatch_serial_errors_total{reason="parse"}'] == 0
