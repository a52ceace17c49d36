"""Serial options end to end on a pty: encoding, line ending, per-channel stale_after, the status page."""

from __future__ import annotations

from exporter_helpers import MakeApp, RawPty, base_url, http_get, scrape, wait_until

from exporter.framing import LineFramer, Overlong


def test_a_latin1_device_is_read_with_its_encoding(raw_pty: RawPty, make_app: MakeApp) -> None:
    app = make_app(raw_pty.path, format="json", encoding="latin-1")
    wait_until(lambda: app.reader.connected)
    raw_pty.write('{"temperature": 72.5, "unit": "°C"}\n'.encode("latin-1"))
    got = wait_until(lambda: (g := scrape(app.url)).get("machine_temperature_celsius") == 72.5 and g)
    assert got['millwatch_serial_errors_total{reason="decode"}'] == 0
    assert got['millwatch_serial_errors_total{reason="skipped_value"}'] == 1  # "°C" is not a number


def test_the_same_bytes_as_utf8_are_a_decode_error(raw_pty: RawPty, make_app: MakeApp) -> None:
    app = make_app(raw_pty.path, format="json")
    wait_until(lambda: app.reader.connected)
    raw_pty.write('{"temperature": 72.5, "unit": "°C"}\n'.encode("latin-1"))
    wait_until(lambda: scrape(app.url)['millwatch_serial_errors_total{reason="decode"}'] == 1)


def test_cr_line_endings(raw_pty: RawPty, make_app: MakeApp) -> None:
    app = make_app(raw_pty.path, line_ending="cr")
    wait_until(lambda: app.reader.connected)
    raw_pty.write(b"temperature=1\rtemperature=2\r")
    wait_until(lambda: (g := scrape(app.url))["millwatch_serial_readings_total"] == 2 and g)
    assert scrape(app.url)["machine_temperature_celsius"] == 2.0


def test_framing_by_line_ending() -> None:
    crlf = LineFramer(64, "crlf")
    assert list(crlf.feed(b"temperature=3\r")) == []
    assert list(crlf.feed(b"\ntemperature=4\r\n")) == [
        b"temperature=3\r",
        b"temperature=4\r",
    ]  # CR stripped later
    lf = LineFramer(64, "lf")
    assert list(lf.feed(b"a=1\rb=2\n")) == [b"a=1\rb=2"]  # a lone CR is part of the line
    short = LineFramer(16, "auto")
    frames = list(short.feed(b"x" * 40 + b"\nok=1\n"))
    assert isinstance(frames[0], Overlong) and frames[1:] == [b"ok=1"]


def test_a_channel_may_stay_fresh_longer_than_the_others(raw_pty: RawPty, make_app: MakeApp) -> None:
    app = make_app(raw_pty.path, stale_after="1s", channels={"pressure": {"stale_after": "1h"}})
    wait_until(lambda: app.reader.connected)
    raw_pty.write(b"temperature=70 pressure=1.5\n")
    wait_until(lambda: app.reader.readings_total == 1)  # not via /metrics: 1s may pass on a busy host

    def temperature_gone() -> dict[str, float]:
        got = scrape(app.url)
        assert "machine_temperature_celsius" not in got
        return got

    got = wait_until(temperature_gone, what="the temperature to go stale after 1s")
    assert got["machine_pressure_bar"] == 1.5  # its own stale_after is an hour
    page = http_get(base_url(app.url) + "/").text
    assert "stale (older than 1s)" in page


def test_the_status_page_shows_the_last_raw_line_escaped_and_cut_and_the_buffer(
    raw_pty: RawPty, make_app: MakeApp
) -> None:
    app = make_app(raw_pty.path, max_line_bytes=1024)
    wait_until(lambda: app.reader.connected)
    raw_pty.write(b"temperature=64.5\n")
    wait_until(lambda: scrape(app.url).get("millwatch_buffer_readings") == 1)
    raw_pty.write(b"<script>alert(1)</script> " + b"y" * 500 + b"\n")
    wait_until(lambda: scrape(app.url)['millwatch_serial_errors_total{reason="parse"}'] == 1)
    page = http_get(base_url(app.url) + "/").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    assert "y" * 150 in page and "y" * 250 not in page and "(cut)" in page
    assert "Oldest reading" in page and "1 readings" in page
    assert "Size" in page and "writing" in page
