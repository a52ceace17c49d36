"""The audit on SQLite and PostgreSQL: rows committed only with their change, inventory and alert
actions listed together newest first, paged with `before`."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import database_url

from scraper.alerting.store import AlertStore
from scraper.store import Store
from server.audit import AuditLog, AuditRow
from server.inventory_edit import Change


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    store = Store(database_url(request.param, tmp_path))
    store.migrate()
    try:
        yield store
    finally:
        store.close()


def test_inventory_and_alert_actions_newest_first_and_paged(store: Store) -> None:
    times = iter([100.0, 300.0, 500.0])
    audit = AuditLog(store, clock=lambda: next(times))
    change = Change("machine.update", "press_01", {"id": "press_01", "enabled": True}, {"id": "press_01"})
    with audit.journal("ada").recording([change]):
        pass
    alerts = AlertStore(store.engine.url)
    try:
        alerts.add_window(
            scope="machine",
            target="press_01",
            starts_at=0,
            ends_at=1,
            weekly=False,
            reason="relining",
            actor="token:ops",
            now=200.0,
        )
    finally:
        alerts.close()
    with audit.recording("ada", [AuditRow("plan.upload", "site:Berlin", "image/png 10x10")]):
        pass
    with audit.recording("ada", [AuditRow("machine.delete", "lathe_02", "diff")]):
        pass

    entries = audit.entries(limit=10)
    assert [(e["time"], e["source"], e["action"], e["actor"]) for e in entries] == [
        (500.0, "inventory", "machine.delete", "ada"),
        (300.0, "inventory", "plan.upload", "ada"),
        (200.0, "alerts", "maintenance.add", "token:ops"),
        (100.0, "inventory", "machine.update", "ada"),
    ]
    assert entries[3]["machine"] == "press_01"
    assert entries[3]["detail"] == (
        "--- press_01 (before)\n+++ press_01 (after)\n@@ -1,2 +1 @@\n id: press_01\n-enabled: true\n"
    )
    assert entries[1]["machine"] is None and entries[1]["target"] == "site:Berlin"
    # Paging: two at a time, then what is older than the last one seen.
    first = audit.entries(limit=2)
    rest = audit.entries(limit=2, before=first[-1]["time"])
    assert [e["id"] for e in first + rest] == [e["id"] for e in entries]


def test_a_change_that_fails_leaves_no_row(store: Store) -> None:
    audit = AuditLog(store)
    with pytest.raises(OSError), audit.recording("ada", [AuditRow("plan.upload", "site:Berlin", None)]):
        raise OSError("disk full")
    assert audit.entries() == []
