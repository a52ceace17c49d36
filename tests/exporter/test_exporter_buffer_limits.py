"""The buffer under pressure: a size cap, a full disk, and an exporter killed with SIGKILL mid-write."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from exporter_helpers import MakeApp, MakeSensor, RawPty, http_get, scrape, wait_until

from exporter.buffer import ReadingBuffer
from exporter.errors import BufferStoreError

CAP = 64 * 1024


def test_the_size_cap_drops_the_oldest_readings_and_counts_them(tmp_path: Path) -> None:
    path = tmp_path / "capped.sqlite"
    buffer = ReadingBuffer(str(path), 10 * 24 * 3600, lambda: 10_000.0, max_bytes=CAP)
    written = 0
    for second in range(4000):
        at = float(second)
        buffer.append_many([(at, "machine_temperature_celsius", 65.0), (at, "machine_pressure_bar", 1.0)])
        written += 2
        assert buffer.size_bytes() <= CAP
    health = buffer.health()
    assert health.rows + health.evicted_total == written
    assert health.evicted_total > 0
    assert health.oldest is not None and health.oldest > 0.0  # the oldest went first ...
    assert buffer.since(3998.0, 10) == [
        (3999.0, "machine_pressure_bar", 1.0),
        (3999.0, "machine_temperature_celsius", 65.0),
    ]
    buffer.close()
    # ... and the file stops growing near the cap: freed pages are reused (WAL emptied at close).
    assert path.stat().st_size <= CAP * 1.25


def test_a_full_disk_shows_on_metrics_and_the_page_while_live_values_are_served(
    raw_pty: RawPty, make_app: MakeApp
) -> None:
    app = make_app(raw_pty.path)
    wait_until(lambda: app.reader.connected)
    raw_pty.write(b"temperature=60\n")
    wait_until(lambda: scrape(app.url).get("millwatch_buffer_readings") == 1.0)
    buffer = app.buffer
    assert buffer is not None
    # SQLite's page limit fails writes with SQLITE_FULL, exactly the error of a full disk
    # (a real full file system cannot be made here without mounting one).
    db = buffer._db
    assert db is not None
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")
    line = iter(range(100_000))

    def failing() -> dict[str, float]:
        raw_pty.write(b"temperature=%d.5 label_%d=1\n" % (next(line), next(line)))
        got = scrape(app.url)
        assert got["millwatch_buffer_up"] == 0.0, got.get("millwatch_buffer_write_errors_total")
        return got

    got = wait_until(failing, what="buffer writes failing")
    assert got["millwatch_buffer_write_errors_total"] >= 1
    assert got["machine_temperature_celsius"] > 60  # live values are still served
    page = http_get(app.url.replace("/metrics", "/")).text
    assert "writes failing" in page and "full" in page
    db.execute("PRAGMA max_page_count = 1073741823")
    raw_pty.write(b"temperature=70\n")
    wait_until(lambda: scrape(app.url)["millwatch_buffer_up"] == 1.0, what="buffer writing again")


def test_a_write_to_a_closed_buffer_is_counted(tmp_path: Path) -> None:
    buffer = ReadingBuffer(str(tmp_path / "b.sqlite"), 3600)
    buffer.close()
    try:
        buffer.append(1.0, "machine_x", 1.0)
    except BufferStoreError as exc:
        assert "closed" in str(exc)
    else:
        raise AssertionError("a closed buffer accepted a write")


EXPORTER_YAML = """\
machine: {{id: press_01}}
listen: 127.0.0.1:0
serial: {{port: {port}, stale_after: 5s}}
buffer: {{path: {buffer}}}
"""


def test_sigkill_mid_write_leaves_the_buffer_intact(make_sensor: MakeSensor, tmp_path: Path) -> None:
    sensor = make_sensor(interval=0.002)  # 500 lines/s, 3 readings each: the exporter is always writing
    buffer_path = tmp_path / "buffer.sqlite"
    config = tmp_path / "exporter.yaml"
    config.write_text(EXPORTER_YAML.format(port=sensor.path, buffer=buffer_path), encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter.cli", "--config", str(config), "--log-level", "INFO"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = wait_until(lambda: _metrics_url(process), timeout=30, what="the exporter's address in its log")
        got = wait_until(
            lambda: (g := scrape(url))["millwatch_serial_readings_total"] >= 300 and g, timeout=30
        )
        seen = got["millwatch_serial_readings_total"]
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        assert process.stderr is not None
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    with sqlite3.connect(buffer_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    reopened = ReadingBuffer(str(buffer_path), 24 * 3600)
    try:
        # Every line counted before the scrape was committed before it was counted (minus the one
        # being handled at that moment): nothing acknowledged is lost.
        assert reopened.count() >= 3 * (seen - 1)
        reopened.append(10**10, "machine_temperature_celsius", 1.0)  # and it takes writes again
        assert reopened.has_after(10**10 - 1)
    finally:
        reopened.close()


def _metrics_url(process: subprocess.Popen[str]) -> str | None:
    assert process.poll() is None, "the exporter exited"
    assert process.stderr is not None
    line = process.stderr.readline()
    if "serving http://" in line:
        return line.split("serving ", 1)[1].split(" ", 1)[0]
    return None


def test_the_reading_count_follows_writes_prunes_and_reopening(tmp_path: Path) -> None:
    now = [1000.0]
    path = str(tmp_path / "b.sqlite")
    buffer = ReadingBuffer(path, 100, lambda: now[0])
    buffer.append_many([(950.0, "machine_a", 1.0), (950.0, "machine_b", 2.0), (950.0, "machine_a", 9.0)])
    assert buffer.health().rows == 2 == buffer.count()  # the repeated (time, metric) is ignored
    now[0] = 1060.0
    buffer.append(1060.0, "machine_a", 3.0)  # a minute after the last prune: the two old ones go
    assert buffer.health().rows == 1 == buffer.count()
    assert buffer.health().oldest == 1060.0
    buffer.close()
    reopened = ReadingBuffer(path, 100, lambda: now[0])
    assert reopened.health().rows == 1
    reopened.close()
