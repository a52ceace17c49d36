"""Push mode end to end: a real exporter on a simulated serial port (a pseudo-terminal) pushes to a
`millwatch serve` process that never scrapes it; the server is stopped for 30 s while the exporter
keeps reading, then started again: every reading of the gap is in the database exactly once."""

from __future__ import annotations

import logging
import re
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, expect
from support import MillwatchProcess, database_url, free_port, get_json, run_millwatch, wait_until

from exporter.app import ExporterApp
from exporter.config import parse_config
from exporter.push import PositionFile
from exporter.simulator import SimulatedSensor
from scraper.schema import sample_time_sql

OUTAGE_SECONDS = 30.0
INVENTORY = """\
defaults:
  push_interval: 1s
  push_stale_intervals: 60
machines:
  - id: press
    name: Press Porto
    mode: push
    location: {lat: 41.15, lon: -8.63}
"""


class _Requests(logging.Handler):
    """Every request line the exporter's HTTP server logs (it logs each one at debug level)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def exporter_requests() -> Iterator[_Requests]:
    logger = logging.getLogger("exporter.http")
    handler, level = _Requests(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def press(base: str) -> dict[str, Any] | None:
    body = get_json(f"{base}/api/machines")
    if body is None:
        return None
    return next((m for m in body["machines"] if m["id"] == "press"), None)


def stored(url: str) -> list[tuple[int, str, float]]:
    """(time in ms, metric, value) of every stored sample of the push machine."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    f"SELECT {sample_time_sql('p')}, s.metric, p.value FROM samples p "
                    "JOIN series s ON s.id = p.series_id"
                    " WHERE s.machine_id = 'press'"
                )
            ).all()
    finally:
        engine.dispose()
    return sorted((int(t), str(m), float(v)) for t, m, v in rows)


def buffered(path: Path, up_to_position: int) -> list[tuple[int, str, float]]:
    """The same from the exporter's buffer, its times rounded to ms as the store keeps them."""
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT time, metric, value FROM readings WHERE rowid <= ?", (up_to_position,)
        ).fetchall()
    return sorted((round(float(t) * 1000), str(m), float(v)) for t, m, v in rows)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@pytest.mark.timeout(240)
def test_a_push_exporter_is_up_unscraped_and_loses_nothing_when_the_centre_is_down(
    tmp_path: Path, backend: str, exporter_requests: _Requests, browser: Browser
) -> None:
    url = database_url(backend, tmp_path)
    inventory = tmp_path / "machines.yaml"
    inventory.write_text(INVENTORY)
    created = run_millwatch(["key", "create", "press", "--db", url, "--inventory", str(inventory)])
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("mwk_") and key not in created.stderr
    key_file = tmp_path / "press.key"
    key_file.write_text(key + "\n")

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = ["serve", "--inventory", str(inventory), "--db", url, "--port", str(port), "--log-level", "debug"]
    buffer_path = tmp_path / "press-buffer.sqlite"
    with SimulatedSensor(scenario="normal", interval=0.2, seed=3) as sensor:
        assert sensor.path is not None
        config = parse_config(
            {
                "machine": {"id": "press", "name": "Press Porto"},
                "listen": "127.0.0.1:0",
                "serial": {"port": sensor.path, "stale_after": "10s"},
                "buffer": {"path": str(buffer_path)},
                "push": {
                    "url": f"{base}/api/ingest",
                    "api_key_file": str(key_file),
                    "every": "500ms",
                    "retry_max": "2s",
                    "timeout": "5s",
                },
            },
            "e2e",
        )
        with MillwatchProcess(serve, tmp_path) as first:
            first.wait_healthy(port)
            app = ExporterApp(config)
            app.start()
            try:

                def up_with_readings() -> bool:
                    view = press(base)
                    assert view is not None and view["status"] == "up", view
                    return 60 < view["readings"]["machine_temperature_celsius"] < 75

                wait_until(up_with_readings, timeout=30, what="the push machine to be up on the map")
                view = press(base)
                assert view is not None and view["mode"] == "push" and view["url"] == ""
                # And on the page an operator keeps open: its marker, up, says when it last pushed.
                context = browser.new_context(viewport={"width": 1280, "height": 720})
                try:
                    page = context.new_page()
                    page.goto(f"{base}/#map=7/41.15/-8.63")
                    marker = page.locator('.mw-marker[data-machine-id="press"]')
                    expect(marker).to_have_attribute("data-status", "up", timeout=20_000)
                    expect(marker).to_have_attribute("aria-label", re.compile("^Press Porto: "))
                    marker.click()
                    expect(page.get_by_text("Last push", exact=True).first).to_be_visible(timeout=10_000)
                finally:
                    context.close()
                assert first.stop(signal.SIGTERM) == 0
                down_since = time.time()
                assert app.push is not None
                push = app.push

                def read_through_the_outage() -> bool:
                    with sqlite3.connect(buffer_path) as db:
                        newest = db.execute("SELECT MAX(time) FROM readings").fetchone()[0]
                    return newest is not None and newest >= down_since + OUTAGE_SECONDS

                wait_until(read_through_the_outage, timeout=OUTAGE_SECONDS + 60, what="30 s of readings")
                assert push.status().errors_total["unreachable"] >= 1
                assert (push.status().pending or 0) > 0
                back_at = time.time()
                with MillwatchProcess(serve, tmp_path) as second:
                    second.wait_healthy(port)

                    def caught_up() -> bool:
                        status = push.status()
                        assert status.last_success_time is not None and status.last_success_time > back_at
                        return status.pending == 0

                    wait_until(caught_up, timeout=60, what="the exporter to send what it missed")
                    view = press(base)
                    assert view is not None and view["status"] == "up", view
                    # The exporter stops first: a batch it sent is then always one it heard acknowledged.
                    app.stop()
                    second.stop(signal.SIGTERM)
                    server_log = first.stderr + second.stderr
            finally:
                app.stop()

    acknowledged = PositionFile(str(buffer_path) + ".push.json").load().position
    sent = buffered(buffer_path, acknowledged)
    in_database = stored(url)
    assert in_database == sent  # every reading acknowledged is stored, and only once
    gap = [row for row in sent if down_since * 1000 <= row[0] <= back_at * 1000]
    assert len(gap) >= 3 * OUTAGE_SECONDS / 0.2 * 0.5, len(gap)  # 3 channels, a line every 0.2 s
    assert exporter_requests.lines == []  # nobody asked the exporter for anything: never scraped
    assert key not in server_log
