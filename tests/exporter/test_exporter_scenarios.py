"""What the exporter shows when the sensor misbehaves: silence, garbage, a pulled cable."""

from __future__ import annotations

from pathlib import Path

from exporter_helpers import MakeApp, MakeSensor, base_url, http_get, scrape, wait_until

CHANNELS = ("machine_temperature_celsius", "machine_pressure_bar", "machine_speed_rpm")


def test_a_silent_sensor_goes_stale(make_sensor: MakeSensor, make_app: MakeApp) -> None:
    sensor = make_sensor()
    app = make_app(sensor.path, stale_after="600ms")
    wait_until(lambda: scrape(app.url).get("millwatch_serial_up") == 1.0, what="a fresh reading")
    sensor.scenario = "silent"

    def stale() -> bool:
        got = scrape(app.url)
        return got["millwatch_serial_up"] == 0.0 and not any(name in got for name in CHANNELS)

    wait_until(stale, what="the channel samples to disappear")
    got = scrape(app.url)
    assert got["millwatch_serial_readings_total"] >= 1
    assert "millwatch_serial_last_reading_timestamp_seconds" in got, (
        "the age of the last reading stays visible"
    )
    assert sum(v for k, v in got.items() if k.startswith("millwatch_serial_errors_total")) == 0
    page = http_get(base_url(app.url) + "/").text
    assert "Port open, no fresh readings" in page and "stale" in page

    sensor.scenario = "normal"
    wait_until(lambda: scrape(app.url).get("millwatch_serial_up") == 1.0, what="readings to come back")


def test_a_sensor_that_never_spoke(make_sensor: MakeSensor, make_app: MakeApp) -> None:
    app = make_app(make_sensor(scenario="silent").path, stale_after="600ms")
    wait_until(lambda: app.reader.connected)
    got = scrape(app.url)
    assert got["millwatch_serial_up"] == 0.0
    assert "millwatch_serial_last_reading_timestamp_seconds" not in got
    assert not any(name in got for name in CHANNELS)


def test_garbage_is_counted_and_the_exporter_keeps_serving(
    make_sensor: MakeSensor, make_app: MakeApp
) -> None:
    app = make_app(make_sensor(scenario="garbage", interval=0.02).path)

    def errors() -> dict[str, float]:
        got = scrape(app.url)
        return {k: v for k, v in got.items() if k.startswith("millwatch_serial_errors_total")}

    wait_until(
        lambda: (
            errors()['millwatch_serial_errors_total{reason="parse"}'] >= 3
            and errors()['millwatch_serial_errors_total{reason="decode"}'] >= 3
        ),
        what="parse and decode errors",
    )
    first = errors()
    wait_until(lambda: sum(errors().values()) > sum(first.values()), what="the error count to keep growing")
    got = scrape(app.url)
    assert got["millwatch_serial_up"] == 0.0
    assert got["millwatch_serial_readings_total"] == 0.0
    assert not any(name in got for name in CHANNELS)
    assert got['millwatch_serial_errors_total{reason="io"}'] == 0.0
    assert http_get(base_url(app.url) + "/healthz").text == "ok"
    assert app.reader.connected


def test_an_unplugged_port_is_reopened_when_it_comes_back(
    make_sensor: MakeSensor, make_app: MakeApp, tmp_path: Path
) -> None:
    link = tmp_path / "ttyMILL0"
    first = make_sensor(link=link)
    app = make_app(str(link))
    wait_until(lambda: scrape(app.url).get("millwatch_serial_up") == 1.0, what="the first sensor")

    first.stop()  # the cable is pulled: the device and its link are gone
    assert not link.exists()

    def unplugged() -> bool:
        got = scrape(app.url)
        port_errors = (
            got['millwatch_serial_errors_total{reason="io"}']
            + got['millwatch_serial_errors_total{reason="open"}']
        )
        return got["millwatch_serial_up"] == 0.0 and port_errors >= 2

    wait_until(unplugged, what="serial_up 0 and io/open errors")
    got = scrape(app.url)
    assert got['millwatch_serial_errors_total{reason="io"}'] == 1.0
    assert "not open" in http_get(base_url(app.url) + "/").text
    readings_before = got["millwatch_serial_readings_total"]

    make_sensor(link=link, seed=99)  # plugged in again, possibly as another /dev/pts number
    wait_until(
        lambda: scrape(app.url).get("millwatch_serial_up") == 1.0, timeout=15, what="readings to resume"
    )
    wait_until(lambda: scrape(app.url)["millwatch_serial_readings_total"] > readings_before)
    assert all(name in scrape(app.url) for name in CHANNELS)
