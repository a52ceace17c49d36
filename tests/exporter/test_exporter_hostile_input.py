"""End to end over real HTTP and a real pty: input that must not break the exporter.

A value that is finite on the wire but not after its channel's scaling, an old buffer file holding
rows that are not finite numbers, and a device that invents a new key on every line.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import time
from pathlib import Path

from exporter_helpers import MakeApp, RawPty, base_url, http_get, samples, scrape, wait_until

from exporter.buffer import ReadingBuffer
from exporter.serial_reader import MAX_EXTRA_KEYS
from exporter.status_page import MAX_LISTED_EXTRA_KEYS


def errors(url: str) -> dict[str, float]:
    got = scrape(url)
    prefix = 'millwatch_serial_errors_total{reason="'
    return {k[len(prefix) : -2]: v for k, v in got.items() if k.startswith(prefix)}


def test_a_value_out_of_range_after_scaling_is_a_parse_error(raw_pty: RawPty, make_app: MakeApp) -> None:
    app = make_app(raw_pty.path, channels={"temperature": {"scale": 1e10}})
    root = base_url(app.url)
    wait_until(lambda: app.reader.connected, what="the port to open")
    raw_pty.write(b"temperature=1e400\r\n")  # not finite as read
    raw_pty.write(b"temperature=1e300 pressure=1.5\r\n")  # 1e310 after scaling: the whole line goes
    raw_pty.write(b"temperature=7 pressure=1.25\r\n")
    wait_until(
        lambda: app.reader.readings_total == 1 and errors(app.url)["parse"] == 2,
        what="one good, two bad lines",
    )

    exposition = http_get(app.url).text
    assert "Inf" not in exposition and "NaN" not in exposition
    got = samples(exposition)
    assert got["machine_temperature_celsius"] == 7e10
    assert got["machine_pressure_bar"] == 1.25, "the bad line's other values are dropped with it"
    assert got["millwatch_serial_up"] == 1.0

    history = http_get(root + "/history?since=0")
    assert history.status == 200
    readings = json.loads(history.body)["readings"]
    assert {(r["metric"], r["value"]) for r in readings} == {
        ("machine_pressure_bar", 1.25),
        ("machine_temperature_celsius", 7e10),
    }
    page = http_get(root + "/").text
    assert "out of range after scale 1e+10" in page, "the last error tells the technician why"


def test_history_skips_rows_of_an_old_buffer_that_are_not_finite(
    raw_pty: RawPty, make_app: MakeApp, tmp_path: Path
) -> None:
    path = tmp_path / "old.sqlite"
    now = time.time()
    ReadingBuffer(str(path), 24 * 3600).close()
    with contextlib.closing(sqlite3.connect(path)) as db:  # what an exporter before the fix could write
        db.executemany(
            "INSERT INTO readings (time, metric, value) VALUES (?, ?, ?)",
            [
                (now - 30, "machine_temperature_celsius", math.inf),
                (now - 30, "machine_pressure_bar", 1.0),
                (now - 20, "machine_temperature_celsius", -math.inf),
                (now - 10, "machine_temperature_celsius", 70.0),
            ],
        )
        db.commit()
    app = make_app(raw_pty.path, buffer_path=path)
    root = base_url(app.url)

    response = http_get(root + "/history?since=0")
    assert response.status == 200
    body = json.loads(response.body)
    assert [(r["metric"], r["value"]) for r in body["readings"]] == [
        ("machine_pressure_bar", 1.0),
        ("machine_temperature_celsius", 70.0),
    ]
    assert body["next_since"] is None
    first = json.loads(http_get(root + "/history?since=0&limit=1").body)
    assert [r["value"] for r in first["readings"]] == [1.0]
    rest = json.loads(http_get(root + f"/history?since={first['next_since']}&limit=1").body)
    assert ([r["value"] for r in rest["readings"]], rest["next_since"]) == ([70.0], None)


def test_a_device_inventing_keys_keeps_the_exporter_bounded(raw_pty: RawPty, make_app: MakeApp) -> None:
    app = make_app(raw_pty.path)
    root = base_url(app.url)
    wait_until(lambda: app.reader.connected, what="the port to open")
    invented = 3000
    per_line = 100
    for start in range(0, invented, per_line):
        raw_pty.write(" ".join(f"k{n}=1" for n in range(start, start + per_line)).encode() + b"\r\n")
    raw_pty.write(b"temperature=70 pressure=1.5 speed=1480 k0=2\r\n")
    lines = invented // per_line + 1
    wait_until(lambda: app.reader.readings_total == lines, what="every line read")

    got = scrape(app.url)
    assert got['millwatch_serial_errors_total{reason="too_many_keys"}'] == invented - MAX_EXTRA_KEYS
    assert got["machine_temperature_celsius"] == 70.0 and got["millwatch_serial_up"] == 1.0
    latest = app.reader.latest()
    assert len(latest) == 3 + MAX_EXTRA_KEYS
    assert latest["k0"][0] == 2.0, "a kept key keeps being updated"
    assert "k2999" not in latest

    page = http_get(root + "/").text
    assert page.count("no channel configured") == MAX_LISTED_EXTRA_KEYS
    assert f"and {MAX_EXTRA_KEYS - MAX_LISTED_EXTRA_KEYS} more keys without a channel, not listed" in page
    assert "too_many_keys" in page
    assert len(page) < 16_000
