"""The alert tables through AlertStore, on SQLite and PostgreSQL (revision 0007 of the migrations)."""

from __future__ import annotations

import pytest

from scraper.alerting.errors import AlertNotFound, AlertNotOpen, WindowNotFound
from scraper.alerting.store import AlertStore
from scraper.store import Store


def test_an_alert_fires_is_acknowledged_with_an_audit_row_and_resolves(store: Store) -> None:
    alerts = AlertStore(store.sqlalchemy_url)
    try:
        fired = alerts.fire(
            machine_id="press_01",
            rule="hot",
            severity="critical",
            level="alarm",
            reason="machine_temperature_celsius 97 ≥ alarm 95",
            site="Lyon",
            labels={"line": "pressing"},
            started_at=1000.0,
            now=1030.0,
        )
        other = alerts.fire(
            machine_id="lathe_02",
            rule="status",
            severity="warning",
            level="sensor_fault",
            reason="sensor_fault",
            site="Turin",
            labels={},
            started_at=1000.0,
            now=1001.0,
        )
        assert [a.id for a in alerts.open_alerts()] == [fired.id, other.id]
        alerts.mark_notified([fired.id], 1031.0)

        acked = alerts.acknowledge(fired.id, actor="maria", reason="crew on the way", now=1100.0)
        assert (acked.state, acked.acknowledged_by, acked.ack_reason) == (
            "acknowledged",
            "maria",
            "crew on the way",
        )
        with pytest.raises(AlertNotOpen):
            alerts.acknowledge(fired.id, actor="maria", reason="twice", now=1101.0)
        with pytest.raises(AlertNotFound):
            alerts.acknowledge(999_999, actor="maria", reason="nothing", now=1101.0)

        alerts.resolve(fired.id, 1200.0, "condition cleared")
        alerts.resolve(fired.id, 1300.0, "again")  # already resolved: no second event
        record, history = alerts.get_alert(fired.id)
        assert (record.state, record.resolved_at, record.last_notified_at) == ("resolved", 1200.0, 1031.0)
        assert record.labels == {"line": "pressing"} and record.site == "Lyon"
        assert [(e.kind, e.actor, e.detail) for e in history] == [
            ("fired", None, "machine_temperature_celsius 97 ≥ alarm 95"),
            ("acknowledged", "maria", "crew on the way"),
            ("resolved", None, "condition cleared"),
        ]
        assert [a.id for a in alerts.open_alerts()] == [other.id]
        assert [a.id for a in alerts.list_alerts(state="resolved")] == [fired.id]
        assert [a.id for a in alerts.list_alerts(site="Turin")] == [other.id]
        assert [a.id for a in alerts.list_alerts(severity="critical", machine_id="press_01")] == [fired.id]
        assert [a.id for a in alerts.list_alerts()] == [other.id, fired.id]
        (row,) = alerts.audit()
        assert row == {
            "time": 1100.0,
            "actor": "maria",
            "action": "alert.acknowledge",
            "target": f"alert:{fired.id}",
            "detail": "crew on the way",
        }
    finally:
        alerts.close()


def test_maintenance_windows_are_stored_audited_and_deleted(store: Store) -> None:
    alerts = AlertStore(store.sqlalchemy_url)
    try:
        window = alerts.add_window(
            scope="site",
            target="Lyon",
            starts_at=1000.0,
            ends_at=4600.0,
            weekly=True,
            reason="weekly cleaning",
            actor="admin",
            now=900.0,
        )
        assert [w.id for w in alerts.windows()] == [window.id]
        assert alerts.windows()[0].weekly is True
        alerts.delete_window(window.id, actor="admin", now=950.0)
        assert alerts.windows() == []
        with pytest.raises(WindowNotFound):
            alerts.delete_window(window.id, actor="admin", now=960.0)
        assert [(r["action"], r["target"]) for r in alerts.audit()] == [
            ("maintenance.delete", "site:Lyon"),
            ("maintenance.add", "site:Lyon"),
        ]
    finally:
        alerts.close()
