from __future__ import annotations

import math
import time
from importlib.metadata import version

import httpx
from server_helpers import make_view

from scraper.state import FleetState, Status


def test_list_returns_every_machine_sorted_with_the_contract_shape(state: FleetState, serve) -> None:
    b = make_view("ironcast_bilbao_01", status=Status.WARN, reason="machine_temperature_celsius 83 ≥ warn 80")
    a = make_view("acme_lyon_02")
    state.put([b, a])
    base = serve(state)

    before = time.time()
    response = httpx.get(f"{base}/api/machines")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["machines"] == [a.to_dict(), b.to_dict()]
    assert before - 1 <= body["time"] <= time.time() + 1


def test_one_machine_and_an_unknown_id(state: FleetState, serve) -> None:
    view = make_view("ironcast_berlin_03", site="Berlin")
    state.put([view])
    base = serve(state)

    found = httpx.get(f"{base}/api/machines/ironcast_berlin_03")
    missing = httpx.get(f"{base}/api/machines/nope")

    assert found.status_code == 200
    body = found.json()
    assert {k: v for k, v in body.items() if k not in ("health", "history_metrics")} == view.to_dict()
    assert missing.status_code == 404
    assert missing.json() == {"detail": "no machine 'nope'"}


def test_empty_fleet_is_an_empty_list(state: FleetState, serve) -> None:
    base = serve(state)
    assert httpx.get(f"{base}/api/machines").json()["machines"] == []


def test_non_finite_readings_are_sent_as_null_not_invalid_json(state: FleetState, serve) -> None:
    # The Prometheus format allows NaN and Inf; a browser's JSON.parse rejects them.
    view = make_view("m1", readings={"machine_temperature_celsius": math.nan, "machine_speed_rpm": math.inf})
    state.put([view])
    base = serve(state)

    response = httpx.get(f"{base}/api/machines/m1")

    assert response.status_code == 200
    assert "NaN" not in response.text and "Infinity" not in response.text
    assert response.json()["readings"] == {"machine_temperature_celsius": None, "machine_speed_rpm": None}


def test_config_reports_tiles_and_version(state: FleetState, serve) -> None:
    base = serve(state, tile_url="https://tiles.example/{z}/{x}/{y}.png", tile_attribution="© Example")

    body = httpx.get(f"{base}/api/config").json()

    assert body["tile_url"] == "https://tiles.example/{z}/{x}/{y}.png"
    assert body["tile_attribution"] == "© Example"
    assert body["version"] == version("millwatch")


def test_config_without_tiles_says_null(state: FleetState, serve) -> None:
    body = httpx.get(f"{serve(state)}/api/config").json()
    assert body["tile_url"] is None and body["tile_attribution"] is None


def test_no_cors_headers_for_a_foreign_origin(state: FleetState, serve) -> None:
    response = httpx.get(f"{serve(state)}/api/machines", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers
