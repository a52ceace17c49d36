"""A real ExporterApp on 127.0.0.1:0 fed by a SimulatedSensor on a real pseudo-terminal, over real HTTP."""

from __future__ import annotations

import gzip
import json
import socket
import time
from pathlib import Path

import pytest
from exporter_helpers import MakeApp, MakeSensor, base_url, http_get, samples, scrape, wait_until

from exporter.app import ExporterApp
from exporter.config import parse_config
from exporter.errors import ListenError

TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def has_readings(app: ExporterApp, count: int = 3) -> bool:
    return scrape(app.url).get("millwatch_serial_readings_total", 0) >= count


def test_metrics_show_the_sensor_channels_and_health(make_sensor: MakeSensor, make_app: MakeApp) -> None:
    sensor = make_sensor()
    app = make_app(sensor.path)
    wait_until(lambda: has_readings(app), what="readings on /metrics")
    response = http_get(app.url)
    assert response.status == 200
    assert response.headers["content-type"] == TEXT_TYPE
    got = samples(response.text)
    assert 55 < got["machine_temperature_celsius"] < 75
    assert 0.9 < got["machine_pressure_bar"] < 1.1
    assert 1400 < got["machine_speed_rpm"] < 1560
    assert got["millwatch_serial_up"] == 1.0
    assert got["millwatch_serial_readings_total"] >= 3
    assert abs(got["millwatch_serial_last_reading_timestamp_seconds"] - time.time()) < 5
    assert got['machine_info{machine_id="press_01",name="Press 01"}'] == 1.0
    assert got['millwatch_exporter_build_info{version="0.1.0"}'] == 1.0
    for reason in ("overlong", "decode", "parse", "too_many_keys", "open", "io"):
        assert got[f'millwatch_serial_errors_total{{reason="{reason}"}}'] == 0.0
    for collector in ("info", "serial", "buffer", "cpu", "memory", "filesystem", "network", "process"):
        assert got[f'millwatch_collector_success{{collector="{collector}"}}'] == 1.0
    assert got["system_memory_total_bytes"] > 0
    assert got["process_start_time_seconds"] <= time.time()
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            after_labels = line.rpartition("}")[2] if "}" in line else line.partition(" ")[2]
            assert len(after_labels.split()) == 1, f"no timestamps in the exposition: {line}"


def test_gzip_when_asked(make_sensor: MakeSensor, make_app: MakeApp) -> None:
    app = make_app(make_sensor().path)
    plain = http_get(app.url)
    zipped = http_get(app.url, {"Accept-Encoding": "gzip, deflate"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["content-type"] == TEXT_TYPE
    text = gzip.decompress(zipped.body).decode()
    assert "# TYPE millwatch_serial_up gauge" in text
    assert len(zipped.body) < len(plain.body)
    assert "content-encoding" not in plain.headers
    refused = http_get(app.url, {"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers


def test_openmetrics_when_asked(make_sensor: MakeSensor, make_app: MakeApp) -> None:
    app = make_app(make_sensor().path)
    wait_until(lambda: has_readings(app, 1))
    prometheus_accept = (
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
    )
    response = http_get(app.url, {"Accept": prometheus_accept})
    assert response.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert response.text.endswith("# EOF\n")
    assert "millwatch_serial_readings_total " in response.text
    assert "# TYPE millwatch_serial_readings counter" in response.text
    plain = http_get(app.url, {"Accept": "text/plain;version=0.0.4"})
    assert plain.headers["content-type"] == TEXT_TYPE


def test_healthz_status_page_404_and_head(make_sensor: MakeSensor, make_app: MakeApp) -> None:
    sensor = make_sensor()
    app = make_app(sensor.path)
    wait_until(lambda: has_readings(app, 1))
    root = base_url(app.url)
    health = http_get(root + "/healthz")
    assert (health.status, health.text) == (200, "ok")

    page = http_get(root + "/")
    assert page.status == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    html = page.text
    for expected in (
        "Press 01",
        "press_01",
        sensor.path,
        "open",
        "machine_temperature_celsius",
        "Sensor OK",
        'href="/metrics"',
        'href="/history?since=',
        "overlong",
        "ago",
    ):
        assert expected in html, expected
    assert "http://" not in html and "https://" not in html, "no external assets"
    assert "<script" not in html

    missing = http_get(root + "/nothing-here")
    assert missing.status == 404
    head = http_get(app.url, method="HEAD")
    assert head.status == 200 and head.body == b"" and int(head.headers["content-length"]) > 100


def test_history_returns_buffered_readings(make_sensor: MakeSensor, make_app: MakeApp) -> None:
    started = time.time()
    app = make_app(make_sensor().path)
    wait_until(lambda: has_readings(app, 4))
    root = base_url(app.url)
    response = http_get(root + f"/history?since={started - 1}")
    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    body = json.loads(response.body)
    assert body["machine_id"] == "press_01"
    metrics = {r["metric"] for r in body["readings"]}
    assert metrics == {"machine_temperature_celsius", "machine_pressure_bar", "machine_speed_rpm"}
    times = [r["time"] for r in body["readings"]]
    assert times == sorted(times) and times[0] > started - 1
    assert len(body["readings"]) >= 12

    page = json.loads(http_get(root + "/history?since=0&limit=2").body)
    assert len(page["readings"]) == 3, "a page holds whole timestamps: the three channels of one line"
    assert page["next_since"] == page["readings"][-1]["time"]
    rest = json.loads(http_get(root + f"/history?since={page['next_since']}&limit=10000").body)
    assert rest["readings"][0]["time"] > page["next_since"]
    latest = json.loads(http_get(root + f"/history?since={time.time() + 60}").body)
    assert latest == {"machine_id": "press_01", "readings": [], "next_since": None}


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("since=yesterday", "since: expected a Unix time in seconds, got 'yesterday'"),
        ("since=-5", "since: expected a Unix time in seconds, got '-5'"),
        ("since=nan", "since: expected a Unix time in seconds, got 'nan'"),
        ("since=0&limit=0", "limit: expected an integer 1-10000, got 0"),
        ("since=0&limit=100000", "limit: expected an integer 1-10000, got 100000"),
        ("since=0&limit=ten", "limit: expected an integer 1-10000, got 'ten'"),
    ],
)
def test_history_rejects_bad_parameters(
    make_sensor: MakeSensor, make_app: MakeApp, query: str, error: str
) -> None:
    app = make_app(make_sensor().path)
    response = http_get(base_url(app.url) + "/history?" + query)
    assert response.status == 400
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.body) == {"error": error}


def test_history_survives_an_exporter_restart(make_sensor: MakeSensor, tmp_path: Path) -> None:
    sensor = make_sensor()
    data = {
        "machine": {"id": "press_01"},
        "listen": "127.0.0.1:0",
        "serial": {"port": sensor.path},
        "buffer": {"path": str(tmp_path / "kept.sqlite")},
    }
    first = ExporterApp(parse_config(data, "test"))
    first.start()
    try:
        wait_until(lambda: has_readings(first, 3))
        before = json.loads(http_get(base_url(first.url) + "/history?since=0").body)["readings"]
    finally:
        first.stop()
    assert len(before) >= 9
    second = ExporterApp(parse_config(data, "test"))
    second.start()
    try:
        after = json.loads(http_get(base_url(second.url) + "/history?since=0&limit=10000").body)["readings"]
        assert after[: len(before)] == before, "the new process serves what the old one buffered"
        wait_until(lambda: has_readings(second, 1))
        newest = json.loads(http_get(base_url(second.url) + f"/history?since={before[-1]['time']}").body)
        assert newest["readings"], "and keeps adding to it"
    finally:
        second.stop()


def test_several_apps_in_one_process_and_stop_closes_the_port(
    make_sensor: MakeSensor, tmp_path: Path
) -> None:
    apps = []
    for index in range(3):
        sensor = make_sensor(seed=index)
        data = {
            "machine": {"id": f"m{index}", "name": f"Machine {index}"},
            "listen": "127.0.0.1:0",
            "serial": {"port": sensor.path},
            "buffer": {"path": str(tmp_path / f"b{index}.sqlite")},
        }
        app = ExporterApp(parse_config(data, "test"))
        app.start()
        apps.append(app)
    try:
        assert len({app.port for app in apps}) == 3
        for index, app in enumerate(apps):
            wait_until(lambda app=app: has_readings(app, 1))
            got = scrape(app.url)
            assert got[f'machine_info{{machine_id="m{index}",name="Machine {index}"}}'] == 1.0
            assert sum(name.startswith("machine_info") for name in got) == 1
        port = apps[0].port
        # a connection kept alive by a client must not keep a stopped exporter answering
        keep_alive = socket.create_connection(("127.0.0.1", port), timeout=5)
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        keep_alive.sendall(request)
        wait_until(lambda: keep_alive.recv(4096).endswith(b"ok"), what="the first answer")
    finally:
        for app in apps:
            app.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    try:
        keep_alive.sendall(request)
        answer = keep_alive.recv(4096)
    except (ConnectionResetError, BrokenPipeError):
        answer = b""
    finally:
        keep_alive.close()
    assert answer == b""


def test_a_taken_port_is_a_listen_error_and_nothing_keeps_running(
    make_sensor: MakeSensor, tmp_path: Path
) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    data = {
        "machine": {"id": "m"},
        "listen": f"127.0.0.1:{port}",
        "serial": {"port": make_sensor().path},
        "buffer": {"path": str(tmp_path / "b.sqlite")},
    }
    app = ExporterApp(parse_config(data, "test"))
    try:
        with pytest.raises(ListenError) as caught:
            app.start()
        assert str(caught.value).startswith(f"cannot listen on 127.0.0.1:{port}: ")
        assert not app.reader.connected
    finally:
        holder.close()
