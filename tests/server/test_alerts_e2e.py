"""Alerts end to end: a real exporter on a simulated serial port, the real scraper and app on
SQLite, a real SMTP server (STARTTLS + AUTH) and a real webhook receiver, all on loopback."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from alert_helpers import (
    HMAC_KEY,
    SMTP_PASSWORD,
    Hook,
    Mailbox,
    notifications_yaml,
    smtp_server,
    webhook_receiver,
)
from server_helpers import running_app, wait_until
from support import exporter_on_sensor, get_json

from exporter.simulator import SimulatedSensor
from scraper.service import ScraperService
from scraper.state import FleetState
from scraper.store import Store
from server.app import create_app
from server.auth.principal import Role
from server.auth.store import AuthStore
from server.settings import Settings

MACHINE = "furnace_01"
FOR_SECONDS = 1.5


def _inventory(url: str) -> str:
    return (
        "defaults:\n"
        "  scrape_interval: 0.3\n"
        "  scrape_timeout: 0.25\n"
        "  thresholds:\n"
        "    machine_temperature_celsius: {warn: 80, alarm: 95}\n"
        "machines:\n"
        f"  - id: {MACHINE}\n"
        f"    url: {url}\n"
        "    site: Essen\n"
        "    labels: {line: casting}\n"
        "    alerts:\n"
        "      - metric: machine_temperature_celsius\n"
        "        statuses: [alarm]\n"
        f"        for: {FOR_SECONDS}s\n"
        "        severity: critical\n"
    )


@dataclass
class Furnace:
    sensor: SimulatedSensor
    base: str
    box: Mailbox
    hook: Hook
    shift: dict[str, str]  # headers of the viewer token "shift-lead": acknowledges
    admin: dict[str, str]  # headers of the admin token "planner": maintenance windows, audit


@contextlib.contextmanager
def monitored_furnace(
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    static_dir: Path,
    *,
    hook_channel: bool = True,
    **notify: Any,
) -> Iterator[Furnace]:
    """The furnace's exporter, the app with scraper and alerts, and the two receivers.

    Reads go anonymously (anonymous read on, as a wall screen); acting needs a token of the store.
    """
    monkeypatch.setenv("MILLWATCH_TEST_HMAC_KEY", HMAC_KEY)
    with (
        smtp_server(folder) as box,
        webhook_receiver() as hook,
        exporter_on_sensor(MACHINE, "normal", folder) as (sensor, url),
    ):
        (folder / "smtp.password").write_text(SMTP_PASSWORD + "\n")
        (folder / "notifications.yaml").write_text(
            notifications_yaml(box, hook if hook_channel else None, **notify)
        )
        inventory = folder / "machines.yaml"
        inventory.write_text(_inventory(url))
        store = Store(f"sqlite:///{folder / 'millwatch.db'}")
        store.migrate()
        auth = AuthStore(store)
        shift = {"Authorization": f"Bearer {auth.create_token('shift-lead', Role.VIEWER)}"}
        admin = {"Authorization": f"Bearer {auth.create_token('planner', Role.ADMIN)}"}
        state = FleetState()
        scraper = ScraperService(inventory, store, state, reload_interval=0.2)
        settings = Settings(
            static_dir=static_dir, inventory=inventory, live_batch_interval=0.05, anonymous_read=True
        )
        try:
            with running_app(create_app(settings, state=state, store=store, scraper=scraper)) as base:
                wait_until(
                    lambda: (get_json(f"{base}/api/machines/{MACHINE}") or {}).get("status") == "up",
                    timeout=30,
                    what="the furnace to be scraped and up",
                )
                yield Furnace(sensor, base, box, hook, shift, admin)
        finally:
            store.close()


def _scrapes_after(base: str, count: int) -> None:
    """Wait until the furnace was scraped `count` more times (the scraper moved on)."""
    first = get_json(f"{base}/api/machines/{MACHINE}")["last_scrape"]["time"]
    interval = 0.3
    wait_until(
        lambda: get_json(f"{base}/api/machines/{MACHINE}")["last_scrape"]["time"] >= first + count * interval,
        timeout=30,
        what=f"{count} more scrapes",
    )


def _open_alert(base: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        alerts = get_json(f"{base}/api/alerts?state=open&machine={MACHINE}")["alerts"]
        return alerts[0] if alerts else None

    return wait_until(found, timeout=30, what="an open alert for the furnace")


def _valid_signature(headers: dict[str, str], body: bytes) -> bool:
    expected = "sha256=" + hmac.new(HMAC_KEY.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers.get("x-millwatch-signature", ""), expected)


def test_an_overheating_machine_pages_once_by_mail_and_webhook_then_resolves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, static_dir: Path
) -> None:
    with monitored_furnace(tmp_path, monkeypatch, static_dir) as furnace:
        sensor, base, box, hook = furnace.sensor, furnace.base, furnace.box, furnace.hook
        sensor.scenario = "overheat"
        alert = _open_alert(base)
        assert alert["state"] == "firing" and alert["severity"] == "critical", alert
        assert alert["site"] == "Essen" and "≥ alarm 95" in alert["reason"], alert
        # One spike does not page: the condition held for `for:` before the alert fired.
        assert alert["fired_at"] - alert["started_at"] >= FOR_SECONDS

        wait_until(
            lambda: len(box.received()) == 1 and len(hook.raw()) == 1, timeout=30, what="one mail, one POST"
        )
        mail = box.received()[0]
        assert "[FIRING:1] critical" in mail["Subject"] and MACHINE in mail["Subject"]
        assert mail["To"] == "oncall@plant.test"
        assert "machine_temperature_celsius" in mail.get_payload()
        headers, body = hook.raw()[0]
        assert _valid_signature(headers, body), headers
        payload = hook.received()[0][1]
        assert (payload["version"], payload["status"], payload["site"]) == (1, "firing", "Essen")
        assert [a["id"] for a in payload["alerts"]] == [alert["id"]]

        # More crossings while it fires, within the repeat interval: nothing more is sent.
        _scrapes_after(base, 5)
        assert get_json(f"{base}/api/machines/{MACHINE}")["status"] == "alarm"
        assert (len(box.received()), len(hook.raw())) == (1, 1)

        # Recovery: one resolved message on each channel.
        sensor.scenario = "normal"
        wait_until(
            lambda: len(box.received()) == 2 and len(hook.raw()) == 2,
            timeout=30,
            what="the resolved messages",
        )
        assert "[RESOLVED:1]" in box.received()[1]["Subject"]
        headers, body = hook.raw()[1]
        assert _valid_signature(headers, body)
        assert hook.received()[1][1]["status"] == "resolved"
        detail = get_json(f"{base}/api/alerts/{alert['id']}")
        assert detail["alert"]["state"] == "resolved"
        kinds = [event["kind"] for event in detail["history"]]
        assert kinds[0] == "fired" and "resolved" in kinds and kinds.count("notified") >= 2, kinds
        channels = {c["name"]: c for c in get_json(f"{base}/api/alerts/channels")["channels"]}
        assert channels["mail"]["sent_total"] == 2 and channels["hook"]["sent_total"] == 2
        assert channels["mail"]["last_error"] is None
        # The password and the signing key are in no answer.
        for path in ("/api/alerts", "/api/alerts/channels", f"/api/alerts/{alert['id']}"):
            text = httpx.get(base + path).text
            assert SMTP_PASSWORD not in text and HMAC_KEY not in text


def test_an_acknowledgement_with_a_reason_stops_the_repeats_and_is_audited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, static_dir: Path
) -> None:
    with monitored_furnace(tmp_path, monkeypatch, static_dir, repeat="1s") as furnace:
        sensor, base, box, hook = furnace.sensor, furnace.base, furnace.box, furnace.hook
        sensor.scenario = "overheat"
        alert = _open_alert(base)
        # Unacknowledged, it is sent again every repeat interval.
        wait_until(lambda: len(hook.raw()) >= 2, timeout=30, what="a repeated notification")
        assert any("(repeat)" in m.get_payload() for m in box.received()[1:]) or len(box.received()) >= 1

        # Anonymous read does not let anyone act: who acknowledges is recorded.
        url = f"{base}/api/alerts/{alert['id']}/ack"
        assert httpx.post(url, json={"reason": "not me"}).status_code == 401
        answer = httpx.post(url, json={"reason": "crew on site, valve stuck"}, headers=furnace.shift)
        assert answer.status_code == 200, answer.text
        acked = answer.json()
        assert acked["state"] == "acknowledged"
        assert acked["acknowledged"]["reason"] == "crew on site, valve stuck"
        assert acked["acknowledged"]["by"] == "token:shift-lead"
        sent = len(hook.raw())

        # Three repeat intervals (and scrapes) later nothing more was sent; in flight at the moment
        # of the acknowledgement, one message may still arrive.
        until = time.monotonic() + 3.0
        wait_until(lambda: time.monotonic() > until, timeout=10, what="three repeat intervals")
        _scrapes_after(base, 2)
        assert len(hook.raw()) <= sent + 1
        settled = len(hook.raw())
        until = time.monotonic() + 2.5
        wait_until(lambda: time.monotonic() > until, timeout=10, what="two more repeat intervals")
        assert len(hook.raw()) == settled

        detail = get_json(f"{base}/api/alerts/{alert['id']}")
        ack = [e for e in detail["history"] if e["kind"] == "acknowledged"]
        assert ack == [
            {
                "time": acked["acknowledged"]["at"],
                "kind": "acknowledged",
                "actor": "token:shift-lead",
                "detail": "crew on site, valve stuck",
            }
        ]
        # The audit is for admins only.
        assert httpx.get(f"{base}/api/alerts/audit", headers=furnace.shift).status_code == 403
        audit = httpx.get(f"{base}/api/alerts/audit", headers=furnace.admin).json()["audit"]
        assert audit[0]["action"] == "alert.acknowledge" and audit[0]["target"] == f"alert:{alert['id']}"
        assert audit[0]["actor"] == "token:shift-lead"
        # Only a firing alert can be acknowledged; a reason is required.
        shift = furnace.shift
        assert httpx.post(url, json={"reason": "again"}, headers=shift).status_code == 409
        assert httpx.post(url, json={"reason": ""}, headers=shift).status_code == 422
        assert (
            httpx.post(f"{base}/api/alerts/999999/ack", json={"reason": "x"}, headers=shift).status_code
            == 404
        )


def test_a_machine_in_a_maintenance_window_sends_nothing_and_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, static_dir: Path
) -> None:
    with monitored_furnace(tmp_path, monkeypatch, static_dir) as furnace:
        sensor, base, box, hook = furnace.sensor, furnace.base, furnace.box, furnace.hook
        body = {"scope": "label", "target": "line=casting", "hours": 2, "reason": "relining the furnace"}
        # Windows are an admin's: a viewer token may not add one.
        assert httpx.post(f"{base}/api/maintenance", json=body, headers=furnace.shift).status_code == 403
        answer = httpx.post(f"{base}/api/maintenance", json=body, headers=furnace.admin)
        assert answer.status_code == 201, answer.text
        window = answer.json()
        assert window["active"] is True

        def shown() -> dict[str, Any]:
            return get_json(f"{base}/api/machines/{MACHINE}")["maintenance"]

        maintenance = wait_until(shown, what="the machine's maintenance field")
        assert maintenance["window"] == window["id"] and maintenance["reason"] == "relining the furnace"

        sensor.scenario = "overheat"
        alert = _open_alert(base)

        def silenced() -> bool:
            kinds = [e["kind"] for e in get_json(f"{base}/api/alerts/{alert['id']}")["history"]]
            assert "silenced" in kinds, kinds
            return True

        wait_until(silenced, timeout=30, what="the alert to be recorded as silenced")
        _scrapes_after(base, 3)
        assert (box.received(), hook.raw()) == ([], [])

        # The window ends: the alert that still fires is sent now.
        window_url = f"{base}/api/maintenance/{window['id']}"
        assert httpx.delete(window_url).status_code == 401
        assert httpx.delete(window_url, headers=furnace.admin).status_code == 204
        wait_until(
            lambda: len(hook.raw()) == 1 and len(box.received()) == 1, timeout=30, what="the notification"
        )
        assert get_json(f"{base}/api/machines/{MACHINE}")["maintenance"] is None
        assert [w["id"] for w in get_json(f"{base}/api/maintenance")["windows"]] == []


def test_a_channel_added_to_notifications_yaml_while_serving_delivers_and_a_broken_edit_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, static_dir: Path
) -> None:
    """No restart to add a channel; a broken file is refused, shown, and what is in force keeps working."""
    with monitored_furnace(tmp_path, monkeypatch, static_dir, hook_channel=False) as furnace:
        base, box, hook = furnace.base, furnace.box, furnace.hook
        notifications = tmp_path / "notifications.yaml"

        def channels() -> dict[str, Any]:
            return get_json(f"{base}/api/alerts/channels")

        assert [c["name"] for c in channels()["channels"]] == ["mail"]
        notifications.write_text(notifications_yaml(box, hook))
        wait_until(
            lambda: [c["name"] for c in channels()["channels"]] == ["hook", "mail"],
            timeout=30,
            what="the webhook channel taken from the changed file",
        )
        assert channels()["config"]["last_reload_successful"] is True

        furnace.sensor.scenario = "overheat"
        wait_until(
            lambda: len(hook.raw()) == 1 and len(box.received()) == 1, timeout=30, what="both channels"
        )
        assert hook.received()[0][1]["status"] == "firing"

        # A broken edit: refused, reported, and the channels in force still deliver.
        notifications.write_text(notifications_yaml(box, hook).replace("type: webhook", "type: pager"))
        wait_until(
            lambda: channels()["config"]["last_reload_successful"] is False,
            timeout=30,
            what="the broken file refused",
        )
        metrics = httpx.get(f"{base}/metrics").text
        assert "millwatch_notifications_config_last_reload_successful 0.0" in metrics
        assert 'millwatch_notifications_config_reloads_total{result="failure"} 1.0' in metrics
        furnace.sensor.scenario = "normal"
        wait_until(
            lambda: len(hook.raw()) == 2, timeout=30, what="the resolved message over the kept webhook"
        )
        assert hook.received()[1][1]["status"] == "resolved"

        # Removing a channel stops it; the counters of the one kept go on.
        wait_until(lambda: len(box.received()) == 2, timeout=30, what="the resolved mail")
        notifications.write_text(notifications_yaml(box, None))
        wait_until(
            lambda: [c["name"] for c in channels()["channels"]] == ["mail"],
            timeout=30,
            what="the webhook channel removed",
        )
        assert channels()["channels"][0]["sent_total"] == 2, channels()
        assert channels()["config"]["last_reload_successful"] is True
