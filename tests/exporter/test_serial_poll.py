"""`serial.mode: poll`: the exporter sends `serial.command` every `serial.every` and reads the answer."""

from __future__ import annotations

from exporter_helpers import MakeApp, MakeSensor, scrape, wait_until


def test_a_polled_sensor_answers_commands_and_is_read(make_sensor: MakeSensor, make_app: MakeApp) -> None:
    sensor = make_sensor(poll_command="READ", line_format="json")
    app = make_app(
        sensor.path, format="json", mode="poll", command="READ\r\n", every="200ms", answer_timeout="150ms"
    )

    def read_twice() -> dict[str, float]:
        got = scrape(app.url)
        assert got.get("millwatch_serial_readings_total", 0) >= 2, got
        return got

    got = wait_until(read_twice, what="two polled readings")
    assert 40 < got["machine_temperature_celsius"] < 110
    assert got["millwatch_serial_up"] == 1
    assert sensor.commands_received >= 2
    assert sensor.lines_written >= 2  # it spoke only when asked: nothing is written unless polled


def test_a_silent_polled_sensor_counts_no_answer(make_sensor: MakeSensor, make_app: MakeApp) -> None:
    sensor = make_sensor(poll_command="READ", scenario="silent")
    app = make_app(sensor.path, mode="poll", command="READ", every="100ms", answer_timeout="50ms")

    def unanswered() -> dict[str, float]:
        got = scrape(app.url)
        assert got['millwatch_serial_errors_total{reason="no_answer"}'] >= 3, got
        return got

    got = wait_until(unanswered, what="no_answer counted")
    assert sensor.commands_received >= 3  # the commands did go out
    assert got["millwatch_serial_readings_total"] == 0
    assert got["millwatch_serial_up"] == 0
    assert "machine_temperature_celsius" not in got


def test_a_wrong_command_is_answered_with_errors_that_are_counted(
    make_sensor: MakeSensor, make_app: MakeApp
) -> None:
    # The sensor answers "READ" but the exporter sends "GET": every exchange ends with an error line
    # (a parse error, not a missing answer), and the exporter keeps polling.
    sensor = make_sensor(poll_command="READ")
    app = make_app(sensor.path, mode="poll", command="GET", every="100ms", answer_timeout="80ms")
    got = wait_until(
        lambda: (g := scrape(app.url))['millwatch_serial_errors_total{reason="parse"}'] >= 2 and g,
        what="error answers counted",
    )
    assert got["millwatch_serial_readings_total"] == 0
