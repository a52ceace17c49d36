"""`millwatch serve` and `millwatch scrape` as processes, scraping real exporters on simulated sensors."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_helpers import wait_until
from support import MillwatchProcess, closed_port_url, exporter_on_sensor, free_port, get_json
from websockets.sync.client import connect


def write_inventory(path: Path, urls: dict[str, str], interval: float = 0.5) -> None:
    lines = [
        "defaults:",
        f"  scrape_interval: {interval}",
        f"  scrape_timeout: {interval * 0.8}",
        "  thresholds:",
        "    machine_temperature_celsius: {warn: 80, alarm: 95}",
        "machines:",
    ]
    for machine_id, url in urls.items():
        lines += [f"  - id: {machine_id}", f"    url: {url}", "    location: {lat: 52.5, lon: 13.4}"]
    path.write_text("\n".join(lines) + "\n")


def statuses(base: str) -> dict[str, dict[str, Any]]:
    body = get_json(f"{base}/api/machines")
    return {} if body is None else {m["id"]: m for m in body["machines"]}


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[dict[str, str]]:
    with (
        exporter_on_sensor("press_01", "normal", tmp_path) as (_, normal),
        exporter_on_sensor("furnace_02", "overheat", tmp_path) as (_, hot),
    ):
        yield {"press_01": normal, "furnace_02": hot, "lathe_03": closed_port_url()}


def test_serve_scrapes_real_exporters_and_stops_on_sigterm(tmp_path: Path, fleet: dict[str, str]) -> None:
    inventory = tmp_path / "machines.yaml"
    write_inventory(inventory, fleet)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [
        "serve",
        "--inventory",
        str(inventory),
        "--db",
        f"sqlite:///{tmp_path / 'm.db'}",
        "--port",
        str(port),
    ]

    with MillwatchProcess(args, tmp_path) as server:

        def expected_statuses() -> bool:
            assert server.running(), server.stderr
            got = statuses(base)
            seen = {k: (v["status"], v["reason"]) for k, v in got.items()}
            assert got.get("press_01", {}).get("status") == "up", seen
            # Up while waiting for the sensor's first line is up too; wait for the readings.
            assert "machine_temperature_celsius" in got["press_01"]["readings"], seen
            assert got["furnace_02"]["status"] == "alarm", seen
            assert got["lathe_03"]["status"] == "down", seen
            return True

        wait_until(expected_statuses, timeout=90, what="up, alarm and down")
        machines = statuses(base)
        assert machines["lathe_03"]["reason"] == "connection refused"
        assert machines["furnace_02"]["reason"].startswith("machine_temperature_celsius ")
        assert 60 < machines["press_01"]["readings"]["machine_temperature_celsius"] < 75

        health = get_json(f"{base}/healthz")
        assert health["scraper"] == "running" and health["database"] == "ok"

        with connect(f"ws://127.0.0.1:{port}/api/live") as ws:
            assert '"type":"snapshot"' in str(ws.recv(timeout=30))

        assert server.stop(signal.SIGTERM) == 0
        assert f"millwatch: serving http://127.0.0.1:{port}/" in server.stdout
        assert "Traceback" not in server.stderr


def test_a_server_without_scraper_shows_what_a_scrape_process_writes(
    tmp_path: Path, fleet: dict[str, str]
) -> None:
    inventory = tmp_path / "machines.yaml"
    write_inventory(inventory, fleet)
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    with (
        MillwatchProcess(["scrape", "--inventory", str(inventory), "--db", db], tmp_path) as scraper,
        MillwatchProcess(["serve", "--no-scrape", "--db", db, "--port", str(port)], tmp_path) as server,
    ):

        def scraped() -> bool:
            assert scraper.running(), scraper.stderr
            assert server.running(), server.stderr
            got = {k: v["status"] for k, v in statuses(base).items()}
            assert got == {"press_01": "up", "furnace_02": "alarm", "lathe_03": "down"}, got
            return True

        wait_until(scraped, timeout=90, what="the scraped statuses through the database")
        assert get_json(f"{base}/healthz")["scraper"] == "off"

        assert scraper.stop(signal.SIGINT) == 0

        def all_stale() -> bool:
            got = {k: v["status"] for k, v in statuses(base).items()}
            assert set(got.values()) == {"stale"}, got
            return True

        wait_until(all_stale, timeout=90, what="every machine to turn stale once nobody scrapes")
        assert server.stop(signal.SIGINT) == 0


def test_the_server_stops_on_sigint_while_a_live_client_is_connected(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ["serve", "--no-scrape", "--db", f"sqlite:///{tmp_path / 'm.db'}", "--port", str(port)]
    with MillwatchProcess(args, tmp_path) as server:
        wait_until(lambda: get_json(f"{base}/healthz"), timeout=90, what="the server")
        with connect(f"ws://127.0.0.1:{port}/api/live") as ws:
            ws.recv(timeout=30)
            assert server.stop(signal.SIGINT, timeout=30) == 0
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the port still answers"
