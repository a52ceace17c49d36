from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from server_helpers import make_view, metric_samples
from support import free_port
from websockets.sync.client import connect

from scraper.state import FleetState, Status
from scraper.store import Store


def test_healthz_without_database_or_scraper(state: FleetState, serve) -> None:
    state.put([make_view("a"), make_view("b")])
    base = serve(state)

    response = httpx.get(f"{base}/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["scraper"] == "off"
    assert body["database"] == "off"
    assert body["inventory_error"] is None
    assert body["machines"] == 2


def test_healthz_with_a_reachable_database(state: FleetState, serve, tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'millwatch.db'}")
    store.migrate()
    try:
        base = serve(state, store=store)
        response = httpx.get(f"{base}/healthz")
    finally:
        store.close()

    assert response.status_code == 200
    assert response.json()["database"] == "ok"
    assert response.json()["status"] == "ok"


def test_healthz_is_503_with_the_reason_when_the_database_is_unreachable(state: FleetState, serve) -> None:
    # A PostgreSQL URL on a port where nothing listens: every connection is refused.
    store = Store(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test")
    try:
        base = serve(state, store=store)
        response = httpx.get(f"{base}/healthz")
        machines = httpx.get(f"{base}/api/machines")
    finally:
        store.close()

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["database"] == "unreachable"
    assert body["reason"] == "database unreachable"
    # The last known fleet is still served.
    assert machines.status_code == 200


@pytest.mark.postgres
def test_healthz_with_a_real_postgresql(state: FleetState, serve) -> None:
    url = os.environ.get("MILLWATCH_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("MILLWATCH_TEST_POSTGRES_URL is not set: no PostgreSQL to check against")
    store = Store(url)  # only pinged: the tables of that database belong to the scraper's tests
    try:
        base = serve(state, store=store)
        response = httpx.get(f"{base}/healthz")
    finally:
        store.close()
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_metrics_report_machines_by_status_and_websocket_clients(state: FleetState, serve) -> None:
    state.put(
        [
            make_view("a"),
            make_view("b"),
            make_view("c", status=Status.ALARM, reason="machine_temperature_celsius 99 ≥ alarm 95"),
            make_view("d", status=Status.DOWN, reason="connection refused"),
        ]
    )
    base = serve(state)

    with connect(base.replace("http://", "ws://") + "/api/live") as ws:
        ws.recv(timeout=10)
        response = httpx.get(f"{base}/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    got = metric_samples(response.text)
    assert got[("millwatch_machines", (("status", "up"),))] == 2
    assert got[("millwatch_machines", (("status", "alarm"),))] == 1
    assert got[("millwatch_machines", (("status", "down"),))] == 1
    assert got[("millwatch_machines", (("status", "stale"),))] == 0
    assert got[("millwatch_websocket_clients", ())] == 1
    assert got[("millwatch_scraper_running", ())] == 0
    for counter in (
        "millwatch_scrapes_total",
        "millwatch_scrape_failures_total",
        "millwatch_store_failures_total",
        "millwatch_samples_dropped_total",
        "millwatch_samples_pruned_total",
        "millwatch_samples_pending",
        "millwatch_websocket_slow_disconnects_total",
    ):
        assert got[(counter, ())] == 0
    assert any(name == "millwatch_server_build_info" for name, _ in got)


def test_metrics_in_openmetrics_when_asked(state: FleetState, serve) -> None:
    base = serve(state)

    response = httpx.get(f"{base}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})

    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


def test_metrics_of_two_apps_are_independent(state: FleetState, serve) -> None:
    other = FleetState()
    state.put([make_view("a")])
    first, second = serve(state), serve(other)

    one = metric_samples(httpx.get(f"{first}/metrics").text)
    two = metric_samples(httpx.get(f"{second}/metrics").text)

    assert one[("millwatch_machines", (("status", "up"),))] == 1
    assert two[("millwatch_machines", (("status", "up"),))] == 0
