"""`POST /api/ingest` against a real server (uvicorn on loopback) and a real database (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from push_helpers import INVENTORY, body, database_url, stored_samples
from server_helpers import metric_samples, running_app
from support import wait_until
from websockets.sync.client import connect

from millwatch_common.push_wire import MAX_BODY_BYTES, MAX_READINGS
from scraper.state import FleetState
from scraper.store import Store
from server.app import create_app
from server.ingest_model import IngestBatch
from server.machine_keys import KeyStore
from server.settings import Settings


@dataclass
class PushServer:
    base: str
    url: str  # the database
    keys: KeyStore
    client: httpx.Client

    def post(self, key: str | None, payload: object, **headers: str) -> httpx.Response:
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return self.client.post(f"{self.base}/api/ingest", content=json.dumps(payload), headers=headers)

    def machine(self, machine_id: str) -> dict[str, object] | None:
        answer = self.client.get(f"{self.base}/api/machines/{machine_id}")
        return answer.json() if answer.status_code == 200 else None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def push_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PushServer]:
    url = database_url(request.param, tmp_path)
    inventory = tmp_path / "machines.yaml"
    inventory.write_text(INVENTORY)
    static = tmp_path / "static"
    static.mkdir()
    store = Store(url)
    store.migrate()
    keys = KeyStore(url)
    settings = Settings(
        static_dir=static,
        inventory=inventory,
        database_url=url,
        store_poll_interval=0.2,
        live_batch_interval=0.05,
        anonymous_read=True,  # these tests read the machines' views; users and roles have their own
    )
    app = create_app(settings, state=FleetState(), store=store, scraper=None, keys=keys)
    try:
        with running_app(app) as base, httpx.Client(timeout=30) as client:
            yield PushServer(base, url, keys, client)
    finally:
        keys.close()
        store.close()


def test_a_batch_reaches_the_live_map_at_once(push_server: PushServer) -> None:
    # An operator's open map hears of a push machine as of a scraped one: by a live update.
    _, key = push_server.keys.create("press")
    with connect(push_server.base.replace("http://", "ws://") + "/api/live") as ws:
        snapshot = json.loads(ws.recv(timeout=10))
        assert snapshot["type"] == "snapshot"
        assert {m["id"]: m["status"] for m in snapshot["machines"]}.get("press") != "up"
        assert push_server.post(key, body()).status_code == 200
        deadline = time.monotonic() + 20
        while True:
            message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            pushed = [m for m in message.get("machines", []) if m["id"] == "press"]
            if message["type"] == "update" and pushed:
                break
    assert pushed[0]["status"] == "up" and pushed[0]["mode"] == "push"
    assert pushed[0]["readings"]["machine_temperature_celsius"] == 72.0


def refused(answer: httpx.Response, status: int, reason: str) -> bool:
    assert answer.status_code == status, answer.text
    assert answer.json()["reason"] == reason, answer.text
    return True


def test_a_batch_is_stored_once_and_shown_like_a_scraped_machine(push_server: PushServer) -> None:
    _, key = push_server.keys.create("press")
    payload = body()
    first = push_server.post(key, payload)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "machine_id": "press",
        "batch_id": "1-3",
        "sequence": 3,
        "readings": 3,
        "samples": 6,
        "stored": 6,
        "duplicates": 0,
    }
    again = push_server.post(key, payload)  # the exporter did not hear the answer and sends it again
    assert again.status_code == 200
    assert (again.json()["stored"], again.json()["duplicates"]) == (0, 6)
    expected = sorted(
        (metric, round(at * 1000) / 1000, value)  # the store keeps milliseconds
        for at, values in ((r["time"], r["values"]) for r in payload["readings"])
        for metric, value in values.items()
    )
    assert stored_samples(push_server.url, "press") == expected

    view = push_server.machine("press")
    assert view is not None
    assert view["status"] == "up" and view["mode"] == "push" and view["url"] == ""
    assert view["readings"] == {"machine_temperature_celsius": 72.0, "machine_pressure_bar": 1.0}
    assert view["system"] == {
        "uptime_seconds": 3600.0,
        "cpu_usage_ratio": 0.25,
        "memory_used_ratio": 0.5,
        "disk_used_ratio": 0.75,
    }

    metrics = metric_samples(push_server.client.get(f"{push_server.base}/metrics").text)
    assert metrics[("millwatch_ingest_batches_total", (("result", "accepted"),))] == 2
    assert metrics[("millwatch_ingest_samples_total", (("result", "stored"),))] == 6
    assert metrics[("millwatch_ingest_samples_total", (("result", "duplicate"),))] == 6


def test_thresholds_and_the_sensor_state_give_the_same_statuses_as_a_scrape(push_server: PushServer) -> None:
    _, key = push_server.keys.create("press")
    now = time.time()
    hot = push_server.post(key, body(readings=[(now - 1, {"machine_temperature_celsius": 97.5})]))
    assert hot.status_code == 200
    view = push_server.machine("press")
    assert view is not None and view["status"] == "alarm"
    assert view["reason"] == "machine_temperature_celsius 97.5 ≥ alarm 95"

    silent = push_server.post(key, body(readings=[], batch_id="heartbeat-1", serial_up=False))
    assert silent.status_code == 200
    view = push_server.machine("press")
    assert view is not None and view["status"] == "sensor_fault"
    assert str(view["reason"]).startswith("serial sensor not reporting")
    assert view["readings"] == {"machine_temperature_celsius": 97.5}  # a batch without readings keeps them


def test_a_machine_that_stops_sending_turns_stale_and_shows_its_age(push_server: PushServer) -> None:
    _, key = push_server.keys.create("press")
    assert push_server.post(key, body()).status_code == 200
    sent = time.time()

    def stale() -> dict[str, object] | None:
        view = push_server.machine("press")
        return view if view is not None and view["status"] == "stale" else None

    view = wait_until(stale, timeout=30, what="press to turn stale (2 push intervals of 1 s)")
    assert view["reason"] == "no data pushed for over 2s"
    last = view["last_scrape"]
    assert isinstance(last, dict) and abs(float(last["time"]) - sent) < 5  # the page shows its age from this
    assert push_server.post(key, body(batch_id="4-4", sequence=4)).status_code == 200
    view = push_server.machine("press")
    assert view is not None and view["status"] == "up"


def test_keys_missing_wrong_malformed_or_revoked_are_401(push_server: PushServer) -> None:
    record, key = push_server.keys.create("press")
    payload = body()
    answer = push_server.post(None, payload)
    assert refused(answer, 401, "unauthorized")
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert refused(push_server.post("mwk_" + "A" * 43, payload), 401, "unauthorized")
    assert refused(push_server.post("not-a-key", payload), 401, "unauthorized")
    assert refused(
        push_server.client.post(
            f"{push_server.base}/api/ingest", json=payload, headers={"Authorization": f"Basic {key}"}
        ),
        401,
        "unauthorized",
    )
    assert push_server.post(key, payload).status_code == 200
    push_server.keys.revoke(key_id=record.id)
    assert refused(push_server.post(key, payload), 401, "unauthorized")
    assert key not in push_server.client.get(f"{push_server.base}/metrics").text


def test_a_key_writes_only_its_own_push_machine(push_server: PushServer) -> None:
    _, press_key = push_server.keys.create("press")
    assert refused(push_server.post(press_key, body("lathe")), 403, "other_machine")
    assert stored_samples(push_server.url, "lathe") == []
    _, puller_key = push_server.keys.create("puller")
    assert refused(push_server.post(puller_key, body("puller")), 403, "not_push")
    _, gone_key = push_server.keys.create("gone")
    assert refused(push_server.post(gone_key, body("gone")), 403, "not_push")
    _, parked_key = push_server.keys.create("parked")
    assert refused(push_server.post(parked_key, body("parked")), 403, "disabled")
    assert push_server.machine("lathe") is None  # nothing was published for it either


def test_bodies_over_the_size_limit_are_refused_before_parsing(push_server: PushServer) -> None:
    _, key = push_server.keys.create("press")
    big = b'{"padding": "' + b"x" * MAX_BODY_BYTES + b'"}'
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    answer = push_server.client.post(f"{push_server.base}/api/ingest", content=big, headers=headers)
    assert refused(answer, 413, "too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"x" * 65536

    answer = push_server.client.post(f"{push_server.base}/api/ingest", content=chunks(), headers=headers)
    assert refused(answer, 413, "too_large")


def test_bad_batches_are_422_with_the_field_named(push_server: PushServer) -> None:
    _, key = push_server.keys.create("press")
    now = time.time()
    too_many = body()  # the exporter's builder refuses to build it: written by hand
    too_many["readings"] = [
        {"time": now - 2000 + i, "values": {"machine_speed_rpm": 1.0}} for i in range(MAX_READINGS + 1)
    ]
    answer = push_server.post(key, too_many)
    assert refused(answer, 422, "invalid")
    assert "readings" in answer.json()["detail"]

    broken = body()
    broken["readings"][0]["values"]["machine_temperature_celsius"] = math.inf
    answer = push_server.client.post(
        f"{push_server.base}/api/ingest",
        content=json.dumps(broken).replace("Infinity", "1e999"),
        headers={"Authorization": f"Bearer {key}"},
    )
    assert refused(answer, 422, "invalid")
    assert "readings.0.values.machine_temperature_celsius" in answer.json()["detail"]

    assert refused(push_server.post(key, {**body(), "version": 2}), 422, "invalid")
    assert refused(push_server.post(key, body(readings=[(now, {"cpu": 1.0})])), 422, "invalid")
    ahead = push_server.post(key, body(readings=[(now + 3600, {"machine_speed_rpm": 1.0})]))
    assert refused(ahead, 422, "clock_ahead")
    assert "ahead of the server's clock" in ahead.json()["detail"]
    assert stored_samples(push_server.url, "press") == []

    metrics = metric_samples(push_server.client.get(f"{push_server.base}/metrics").text)
    assert metrics[("millwatch_ingest_batches_total", (("result", "invalid"),))] == 4
    assert metrics[("millwatch_ingest_batches_total", (("result", "clock_ahead"),))] == 1


def test_the_wire_description_and_the_model_agree() -> None:
    from millwatch_common import push_wire

    assert set(IngestBatch.model_fields) == set(push_wire.BATCH_FIELDS)
    assert IngestBatch.model_fields["version"].annotation.__args__ == (push_wire.WIRE_VERSION,)  # type: ignore[union-attr]
    IngestBatch.model_validate(body())
