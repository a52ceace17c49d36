"""The API's answers hold to their models (server/api_models.py, scraper/view_model.py), the OpenAPI
description carries those models, and the page's generated types are those of the description.

An answer holds to its model when the model reads it and writes back exactly the same JSON: no key
missing, none unknown, every value of its type (`conforms`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from server_helpers import make_view
from websockets.sync.client import connect

from scraper.errors import ScrapeError
from scraper.exposition import Sample
from scraper.inventory import Machine as InventoryMachine
from scraper.state import FleetState, Location, MachineView, Maintenance, PlanPosition, Status, SystemSummary
from scraper.status import evaluate, evaluate_push, failed
from scraper.view_model import Machine
from server.api_models import MachineDetail, MachineList, SnapshotMessage, StatusCounts, UpdateMessage
from server.openapi import TYPES_FILE

ROOT = Path(__file__).resolve().parents[2]


def conforms(model: type[BaseModel], data: Any) -> None:
    assert model.model_validate(data).model_dump(mode="json") == data


def _views() -> list[MachineView]:
    """Views as the scraper and the ingest make them, every optional part present or absent."""
    pulled = InventoryMachine(id="press_14", name="Press 14", url="http://127.0.0.1:9/metrics", site="Berlin")
    pushed = InventoryMachine(id="oven_01", name="Oven", url="", mode="push", location=Location(45.7, 4.8))
    samples = [
        Sample("machine_temperature_celsius", {}, 71.5),
        Sample("millwatch_serial_up", {}, 1.0),
        Sample("system_cpu_usage_ratio", {}, 0.25),
    ]
    scraped = evaluate(pulled, samples, 1764136800.0, 0.02)
    return [
        scraped,
        failed(
            failed(scraped, ScrapeError("connection refused"), 1764136815.0, 5.0), ScrapeError("x"), 1.0, 1.0
        ).with_changes(id="press_15"),
        evaluate_push(
            pushed, None, {"machine_speed_rpm": 1480.0}, True, None, SystemSummary(), 1764136800.0, 0.001, 3
        ),
        pushed.initial_view().with_changes(
            id="oven_02",
            plan_position=PlanPosition(0.5, 0.125),
            maintenance=Maintenance(3, 1764140400.0, "relining"),
        ),
        InventoryMachine(id="lathe", name="Lathe", url="http://127.0.0.1:9/m", enabled=False).initial_view(),
        make_view("mill_07", status=Status.ALARM, reason="machine_temperature_celsius 99 ≥ alarm 95"),
    ]


def test_a_machine_view_writes_exactly_the_model_and_reads_back() -> None:
    for view in _views():
        data = view.to_dict()
        conforms(Machine, data)
        assert MachineView.from_dict(json.loads(json.dumps(data))) == view


def test_a_view_stored_by_an_older_version_reads_with_defaults() -> None:
    old = make_view("press_14").to_dict()
    for key in ("plan_position", "consecutive_failures", "maintenance", "stale_after_seconds"):
        del old[key]
    del old["last_scrape"]["samples"]

    view = MachineView.from_dict(old)

    assert view.plan_position is None and view.consecutive_failures == 0
    assert view.last_scrape is not None and view.last_scrape.samples is None
    conforms(Machine, view.to_dict())


def test_the_floor_plan_position_comes_from_the_inventory_entry() -> None:
    class Placed(InventoryMachine):
        plan_position: dict[str, float] | None = None

    placed = Placed(id="m1", name="M1", url="http://127.0.0.1:9/m", plan_position={"x": 0.2, "y": 0.9})
    unplaced = InventoryMachine(id="m2", name="M2", url="http://127.0.0.1:9/m")

    assert placed.initial_view().plan_position == PlanPosition(0.2, 0.9)
    assert placed.initial_view().to_dict()["plan_position"] == {"x": 0.2, "y": 0.9}
    assert unplaced.initial_view().plan_position is None


def test_reading_a_bad_view_names_the_field() -> None:
    with pytest.raises(ValueError, match="status"):
        MachineView.from_dict({"id": "m", "name": "m", "url": "", "status": "purple"})
    with pytest.raises(ValueError, match="name"):
        MachineView.from_dict({"id": "m", "url": ""})


def test_status_counts_have_every_status() -> None:
    assert list(StatusCounts.model_fields) == [s.value for s in Status]


def test_real_answers_hold_to_their_models(state: FleetState, serve) -> None:
    views = _views()
    state.put(views)
    base = serve(state)

    listing = httpx.get(f"{base}/api/machines").json()
    filtered = httpx.get(f"{base}/api/machines", params={"status": "down"}).json()
    details = [httpx.get(f"{base}/api/machines/{v.id}").json() for v in views]
    ws_url = base.replace("http://", "ws://") + "/api/live"
    with connect(ws_url) as ws:
        snapshot = json.loads(ws.recv(timeout=10))
        state.put(
            [views[0].with_changes(status=Status.WARN, reason="machine_temperature_celsius 81 ≥ warn 80")]
        )
        update = json.loads(ws.recv(timeout=10))

    conforms(MachineList, listing)
    assert len(listing["machines"]) == len(views)
    conforms(MachineList, filtered)
    assert [m["id"] for m in filtered["machines"]] == ["press_15"]
    assert filtered["counts"]["matched"]["down"] == 1 and filtered["counts"]["total"] == len(views)
    for detail in details:
        conforms(MachineDetail, detail)
    conforms(SnapshotMessage, snapshot)
    assert snapshot["type"] == "snapshot" and len(snapshot["machines"]) == len(views)
    conforms(UpdateMessage, update)
    assert update["type"] == "update" and update["machines"][0]["status"] == "warn"


def test_the_openapi_description_names_the_models(state: FleetState, serve) -> None:
    description = httpx.get(f"{serve(state)}/api/openapi.json").json()

    paths = description["paths"]

    def answer(path: str) -> dict[str, Any]:
        return paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]

    assert answer("/api/machines") == {"$ref": "#/components/schemas/MachineList"}
    assert answer("/api/machines/{machine_id}") == {"$ref": "#/components/schemas/MachineDetail"}
    assert answer("/api/machines/{machine_id}/history") == {"$ref": "#/components/schemas/History"}
    assert "text/csv" in paths["/api/machines/{machine_id}/history.csv"]["get"]["responses"]["200"]["content"]
    schemas = description["components"]["schemas"]
    for name in ("Machine", "SnapshotMessage", "UpdateMessage", "PingMessage", "IngestBatch", "Status"):
        assert name in schemas
    # Every key of an answer is always there: the page's types must not make them optional.
    assert set(schemas["Machine"]["required"]) == set(Machine.model_fields)


def _openapi_typescript(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.openapi", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_the_checked_in_page_types_are_generated_from_the_description(tmp_path: Path) -> None:
    current = _openapi_typescript("--typescript", str(TYPES_FILE), "--check")
    stale = tmp_path / "api.gen.ts"
    stale.write_text(TYPES_FILE.read_text(encoding="utf-8").replace("consecutive_failures", "failures"))
    refused = _openapi_typescript("--typescript", str(stale), "--check")

    assert current.returncode == 0, current.stderr
    assert refused.returncode == 1
    assert "is out of date with the API's models" in refused.stderr
    assert "run `make web-types`" in refused.stderr
    assert "+            consecutive_failures: number;" in refused.stderr
