"""The audit: who changed the inventory or a floor plan, when, and how (a diff, secrets masked).

Rows go to `audit_log` (migration 0008) in the store's database, in a transaction that commits only
once the change itself is done (`recording`): a change that fails leaves no row, and a row never
lacks its change. `GET /api/audit` lists these rows together with the alert actions of `alert_audit`
(acknowledgements, maintenance windows; scraper/alerting), newest first.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from scraper.alerting.schema import alert_audit
from scraper.store import Store
from server.inventory_edit import Change

MAX_LIST = 1000
MAX_DETAIL_CHARS = 64 * 1024

metadata = sa.MetaData()

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", sa.Double, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(50), nullable=False),
    sa.Column("target", sa.String(400), nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Index("ix_audit_log_time", "time"),
)


@dataclass(frozen=True)
class AuditRow:
    action: str  # machine.create, machine.update, machine.delete, machine.import, plan.upload, plan.delete
    target: str  # the machine's id, or `site:NAME`
    detail: str | None


class AuditLog:
    """The audit tables of `store`'s database. Synchronous (callers run it in a thread); database
    failures are raised as `scraper.errors.StoreError`."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    @contextlib.contextmanager
    def recording(self, actor: str, rows: Sequence[AuditRow]) -> Iterator[None]:
        """Insert `rows` by `actor`; they are committed when the block ends without an exception."""
        now = self._clock()
        values = [
            {
                "time": now,
                "actor": actor[:200],
                "action": row.action[:50],
                "target": row.target[:400],
                "detail": None if row.detail is None else row.detail[:MAX_DETAIL_CHARS],
            }
            for row in rows
        ]
        try:
            with self._store.transaction("audit") as connection:
                if values:
                    connection.execute(audit_log.insert(), values)
                try:
                    yield
                except Exception as e:
                    # The change failed (a disk error writing the file, say): rolled back, and raised
                    # as itself, not as the store's error the transaction would make of an OSError.
                    raise _ChangeFailed(e) from e
        except _ChangeFailed as failed:
            raise failed.error from None

    def journal(self, actor: str) -> InventoryJournal:
        """What the inventory editor records its changes in, as `actor`."""
        return InventoryJournal(self, actor)

    def entries(self, *, limit: int = 200, before: float | None = None) -> list[dict[str, Any]]:
        """Inventory and alert audit rows, newest first, older than `before` (Unix seconds) if given."""
        limit = max(1, min(limit, MAX_LIST))
        rows: list[dict[str, Any]] = []
        with self._store.reading("audit") as connection:
            for table, source in ((audit_log, "inventory"), (alert_audit, "alerts")):
                query = sa.select(
                    table.c.id, table.c.time, table.c.actor, table.c.action, table.c.target, table.c.detail
                )
                if before is not None:
                    query = query.where(table.c.time < before)
                query = query.order_by(table.c.time.desc(), table.c.id.desc()).limit(limit)
                for row in connection.execute(query).mappings():
                    rows.append({**row, "source": source})
        rows.sort(key=lambda r: (r["time"], r["source"] == "inventory", r["id"]), reverse=True)
        return [_public(row) for row in rows[:limit]]


@dataclass(frozen=True)
class InventoryJournal:
    """`AuditLog.recording` in the shape the inventory editor asks for (`inventory_edit.Journal`)."""

    audit: AuditLog
    actor: str

    def recording(self, changes: Sequence[Change]) -> contextlib.AbstractContextManager[None]:
        rows = [AuditRow(c.action, c.machine_id, c.diff()) for c in changes]
        return self.audit.recording(self.actor, rows)


class _ChangeFailed(Exception):
    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _public(row: dict[str, Any]) -> dict[str, Any]:
    source = row["source"]
    target = row["target"]
    machine = target if source == "inventory" and str(row["action"]).startswith("machine.") else None
    return {
        "id": f"{source}:{row['id']}",
        "source": source,
        "time": row["time"],
        "actor": row["actor"],
        "action": row["action"],
        "target": target,
        "machine": machine,
        "detail": row["detail"],
    }
