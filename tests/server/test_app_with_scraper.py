"""The app with a real ScraperService in its event loop (what `millwatch serve` runs)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from server_helpers import metric_samples, running_app, wait_until
from support import free_port, get_json, write_atomically
from websockets.sync.client import connect

from scraper.errors import InventoryError
from scraper.service import ScraperService
from scraper.state import FleetState
from scraper.store import Store
from server.app import create_app
from server.settings import Settings


def test_scraper_results_reach_api_live_clients_health_and_metrics(
    state: FleetState, serve, tmp_path: Path
) -> None:
    inventory = tmp_path / "machines.yaml"
    inventory.write_text(
        "defaults: {scrape_interval: 0.3, scrape_timeout: 0.2}\n"
        "machines:\n"
        f"  - id: lathe_01\n    url: http://127.0.0.1:{free_port()}/metrics\n"
    )
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    store.migrate()
    scraper = ScraperService(inventory, store, state, reload_interval=0.1)
    try:
        base = serve(state, store=store, scraper=scraper)
        with connect(base.replace("http://", "ws://") + "/api/live") as ws:
            ws.recv(timeout=10)  # the snapshot

            def down() -> bool:
                machine = get_json(f"{base}/api/machines/lathe_01")
                assert machine["status"] == "down", machine
                return True

            wait_until(down, what="the machine to be scraped and found down")

            def failing_in_a_row() -> bool:
                health = get_json(f"{base}/api/machines/lathe_01")["health"]
                assert health["consecutive_failures"] >= 2 and health["samples_scraped"] == 0, health
                assert health["last_error"] and health["last_success_time"] is None, health
                return True

            wait_until(failing_in_a_row, what="two failed scrapes in the machine's health")

            def outage_in_history() -> bool:
                points = get_json(f"{base}/api/machines/lathe_01/history?metric=up&step=1")["points"]
                assert points and all(p["max"] == 0 for p in points), points
                return True

            wait_until(outage_in_history, what="the failed scrapes' `up 0` in the history")
            # The live client heard about it too, in an update.
            while True:
                message = json.loads(ws.recv(timeout=10))
                if message["type"] == "update" and any(m["status"] == "down" for m in message["machines"]):
                    break

        health = get_json(f"{base}/healthz")
        assert (health["scraper"], health["database"], health["inventory_error"]) == ("running", "ok", None)
        metrics = metric_samples(httpx.get(f"{base}/metrics").text)
        assert metrics[("millwatch_scraper_running", ())] == 1
        assert metrics[("millwatch_scrapes_total", ())] >= 1
        assert metrics[("millwatch_scrape_failures_total", ())] >= 1
        assert metrics[("millwatch_machines", (("status", "down"),))] == 1

        # A broken edit keeps the fleet and says what is wrong, with file and line.
        write_atomically(inventory, inventory.read_text() + "  - id: Bad Id\n    url: http://x\n")

        def reported() -> bool:
            error = get_json(f"{base}/healthz")["inventory_error"]
            assert error and f"{inventory}:5: machines[1].id" in error, error
            return True

        wait_until(reported, what="the inventory error in /healthz")
        assert [m["id"] for m in get_json(f"{base}/api/machines")["machines"]] == ["lathe_01"]
    finally:
        store.close()


def test_an_inventory_broken_at_start_stops_the_start_with_its_problems(
    state: FleetState, static_dir: Path, tmp_path: Path
) -> None:
    inventory = tmp_path / "machines.yaml"
    inventory.write_text("machines:\n  - id: press_01\n    url: ftp://x\n")
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    store.migrate()
    app = create_app(
        Settings(static_dir=static_dir, anonymous_read=True),
        state=state,
        store=store,
        scraper=ScraperService(inventory, store, state),
    )
    try:
        with pytest.raises(RuntimeError, match="failed to start"), running_app(app):
            pass
    finally:
        store.close()
    error = app.state.millwatch.startup_error
    assert isinstance(error, InventoryError)
    assert f"{inventory}:3: machines[0].url" in str(error)
