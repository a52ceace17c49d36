"""A running server with its scraper: a machine added through the API is scraped and shown, a
deleted one disappears, and the file stays what the scraper reads."""

from __future__ import annotations

from pathlib import Path

import httpx
from auth_helpers import Accounts, bearer
from inventory_helpers import COMMENTED
from support import exporter_on_sensor, get_json, wait_until

from scraper.service import ScraperService
from scraper.state import FleetState


def test_a_machine_added_through_the_api_is_scraped_and_shown(
    serve, state: FleetState, accounts: Accounts, tmp_path: Path
) -> None:
    inventory = tmp_path / "machines.yaml"
    inventory.write_text(COMMENTED)
    scraper = ScraperService(inventory, accounts.store, state, reload_interval=0.1)
    base = serve(state, store=accounts.store, scraper=scraper, data_dir=tmp_path / "data", alerts=False)
    admin = httpx.Client(base_url=base, headers=bearer(accounts.admin_token), timeout=30)
    with admin, exporter_on_sensor("drill_04", "normal", tmp_path) as (_, url):
        assert {m["id"] for m in get_json(f"{base}/api/machines")["machines"]} == {
            "press_01",
            "lathe_02",
            "mill_03",
        }
        etag = admin.get("/api/inventory/machines").headers["etag"]
        entry = {
            "id": "drill_04",
            "name": "Drill 04",
            "url": url,
            "site": "Lyon",
            "location": {"lat": 45.7, "lon": 4.8},
        }
        created = admin.post("/api/inventory/machines", json=entry, headers={"If-Match": etag})
        assert created.status_code == 201, created.text

        def scraped() -> dict:
            machine = get_json(f"{base}/api/machines/drill_04")
            assert machine and machine.get("status") == "up", machine
            return machine

        machine = wait_until(scraped, 30, what="the new machine to be scraped")
        assert (machine["name"], machine["site"], machine["location"]) == (
            "Drill 04",
            "Lyon",
            {"lat": 45.7, "lon": 4.8},
        )
        assert get_json(f"{base}/healthz")["inventory_error"] is None
        assert "# end of the list: keep new machines above this line" in inventory.read_text()

        deleted = admin.delete(
            "/api/inventory/machines/drill_04", headers={"If-Match": created.json()["etag"]}
        )
        assert deleted.status_code == 204

        def gone() -> bool:
            return "drill_04" not in {m["id"] for m in get_json(f"{base}/api/machines")["machines"]}

        wait_until(gone, 30, what="the deleted machine to leave the fleet")
