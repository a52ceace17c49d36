"""Alerts, their history, maintenance windows and the audit in the scraper's database.

Its own small engine on the same database URL as `scraper.store.Store` (the tables are created by
the same Alembic migrations, revision 0007), so that alerting depends on the store's schema and
not on its internals. Writes are rare (an alert's transitions, an acknowledgement). On SQLite every
transaction takes the write lock when it begins (`BEGIN IMMEDIATE`) and waits at most 5 s for it,
so a read-then-write never fails with a lock upgrade against the scraper's writer. Every failure is
raised as `StoreError` naming the operation. Synchronous: callers run it in a thread.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from scraper.alerting import schema
from scraper.alerting.errors import AlertNotFound, AlertNotOpen, WindowNotFound
from scraper.alerting.maintenance import MaintenanceWindow
from scraper.errors import StoreError

FIRING = "firing"
ACKNOWLEDGED = "acknowledged"
RESOLVED = "resolved"
STATES = (FIRING, ACKNOWLEDGED, RESOLVED)
OPEN_STATES = (FIRING, ACKNOWLEDGED)
SQLITE_BUSY_MS = 5000
POSTGRES_STATEMENT_MS = 10000
MAX_LIST = 1000


@dataclass(frozen=True)
class AlertRecord:
    """One alert as stored. `labels` are the machine's labels when it fired (for routing)."""

    id: int
    machine_id: str
    rule: str
    state: str
    severity: str
    level: str
    reason: str
    site: str | None
    labels: dict[str, str]
    started_at: float
    fired_at: float
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    ack_reason: str | None = None
    resolved_at: float | None = None
    last_notified_at: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.machine_id, self.rule)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of an alert in the API."""
        return {
            "id": self.id,
            "machine_id": self.machine_id,
            "rule": self.rule,
            "state": self.state,
            "severity": self.severity,
            "level": self.level,
            "reason": self.reason,
            "site": self.site,
            "labels": dict(self.labels),
            "started_at": self.started_at,
            "fired_at": self.fired_at,
            "acknowledged": None
            if self.acknowledged_at is None
            else {"at": self.acknowledged_at, "by": self.acknowledged_by, "reason": self.ack_reason},
            "resolved_at": self.resolved_at,
            "last_notified_at": self.last_notified_at,
        }


@dataclass(frozen=True)
class AlertEvent:
    """One step of an alert's history: fired, notified, acknowledged, resolved, notify_failed."""

    time: float
    kind: str
    actor: str | None
    detail: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"time": self.time, "kind": self.kind, "actor": self.actor, "detail": self.detail}


class AlertStore:
    """The alerting tables in the database at `url` (a SQLAlchemy URL). Thread-safe.

    Raises `StoreError("open", ...)` for a URL it cannot use. The schema is created by
    `scraper.store.Store.migrate()`; this class never changes it.
    """

    def __init__(self, url: str | sa.URL) -> None:
        try:
            parsed = sa.make_url(url)
        except ArgumentError as e:
            raise StoreError("open", f"not a database URL: {e}") from e
        self.dialect = parsed.get_backend_name()
        try:
            self._engine = _engine(parsed, self.dialect)
        except (SQLAlchemyError, ImportError) as e:
            raise StoreError("open", str(e).splitlines()[0][:300]) from e
        # One writer of ours at a time (SQLite has one anyway); readers are not held.
        self._write_lock = threading.Lock()

    def close(self) -> None:
        self._engine.dispose()

    # --- alerts ----------------------------------------------------------------------------------

    def open_alerts(self) -> list[AlertRecord]:
        """Every alert not resolved, oldest first."""
        table = schema.alerts
        with self._read("open_alerts") as connection:
            rows = connection.execute(
                sa.select(table).where(table.c.state.in_(OPEN_STATES)).order_by(table.c.id)
            ).mappings()
            return [_alert(row) for row in rows]

    def fire(
        self,
        *,
        machine_id: str,
        rule: str,
        severity: str,
        level: str,
        reason: str,
        site: str | None,
        labels: dict[str, str],
        started_at: float,
        now: float,
    ) -> AlertRecord:
        """Store a new firing alert and its `fired` event; returns it."""
        values = {
            "machine_id": machine_id,
            "rule": rule,
            "state": FIRING,
            "severity": severity,
            "level": level,
            "reason": reason[:2000],
            "site": site,
            "labels_json": json.dumps(labels, sort_keys=True),
            "started_at": started_at,
            "fired_at": now,
        }
        with self._write("fire") as connection:
            alert_id = connection.execute(
                schema.alerts.insert().values(values).returning(schema.alerts.c.id)
            ).scalar_one()
            _event(connection, alert_id, now, "fired", None, reason[:2000])
        return _alert({**values, "id": alert_id, "labels_json": values["labels_json"]})

    def resolve(self, alert_id: int, now: float, detail: str | None = None) -> None:
        """Mark an open alert resolved (an alert already resolved is left as it is)."""
        table = schema.alerts
        with self._write("resolve") as connection:
            done = connection.execute(
                table.update()
                .where(table.c.id == alert_id, table.c.state.in_(OPEN_STATES))
                .values(state=RESOLVED, resolved_at=now)
            ).rowcount
            if done:
                _event(connection, alert_id, now, "resolved", None, detail)

    def acknowledge(self, alert_id: int, *, actor: str, reason: str, now: float) -> AlertRecord:
        """Acknowledge a firing alert: who, when, why; the history and the audit get a row each.

        Raises AlertNotFound, or AlertNotOpen when the alert is resolved or already acknowledged.
        """
        table = schema.alerts
        with self._write("acknowledge") as connection:
            row = connection.execute(sa.select(table).where(table.c.id == alert_id)).mappings().first()
            if row is None:
                raise AlertNotFound(alert_id)
            if row["state"] != FIRING:
                raise AlertNotOpen(alert_id, row["state"])
            connection.execute(
                table.update()
                .where(table.c.id == alert_id)
                .values(state=ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=actor, ack_reason=reason)
            )
            _event(connection, alert_id, now, "acknowledged", actor, reason)
            _audit(connection, now, actor, "alert.acknowledge", f"alert:{alert_id}", reason)
            record = _alert(row)
        return replace(
            record, state=ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=actor, ack_reason=reason
        )

    def mark_notified(self, alert_ids: list[int], now: float) -> None:
        """Note that these alerts were handed to their channels now (the repeat interval counts from
        here; the channels' deliveries add their own history rows)."""
        if not alert_ids:
            return
        table = schema.alerts
        with self._write("mark_notified") as connection:
            connection.execute(table.update().where(table.c.id.in_(alert_ids)).values(last_notified_at=now))

    def record_event(self, alert_ids: list[int], now: float, kind: str, detail: str) -> None:
        """Add a history row (such as `notify_failed`, `silenced`) to each of these alerts."""
        if not alert_ids:
            return
        with self._write("record_event") as connection:
            for alert_id in alert_ids:
                _event(connection, alert_id, now, kind, None, detail)

    def list_alerts(
        self,
        *,
        state: str | None = None,
        machine_id: str | None = None,
        site: str | None = None,
        severity: str | None = None,
        limit: int = 200,
    ) -> list[AlertRecord]:
        """Alerts newest first, filtered by each given value; at most `limit` (capped at 1000)."""
        table = schema.alerts
        query = sa.select(table).order_by(table.c.id.desc()).limit(max(1, min(limit, MAX_LIST)))
        for column, value in (
            (table.c.state, state),
            (table.c.machine_id, machine_id),
            (table.c.site, site),
            (table.c.severity, severity),
        ):
            if value is not None:
                query = query.where(column == value)
        with self._read("list_alerts") as connection:
            return [_alert(row) for row in connection.execute(query).mappings()]

    def get_alert(self, alert_id: int) -> tuple[AlertRecord, list[AlertEvent]]:
        """One alert and its history, oldest event first. Raises AlertNotFound."""
        alerts, events = schema.alerts, schema.alert_events
        with self._read("get_alert") as connection:
            row = connection.execute(sa.select(alerts).where(alerts.c.id == alert_id)).mappings().first()
            if row is None:
                raise AlertNotFound(alert_id)
            history = connection.execute(
                sa.select(events.c.time, events.c.kind, events.c.actor, events.c.detail)
                .where(events.c.alert_id == alert_id)
                .order_by(events.c.id)
            ).all()
        return _alert(row), [AlertEvent(float(t), k, a, d) for t, k, a, d in history]

    def audit(self, *, limit: int = 200) -> list[dict[str, Any]]:
        """The newest audit rows: `{"time", "actor", "action", "target", "detail"}`."""
        table = schema.alert_audit
        with self._read("audit") as connection:
            rows = connection.execute(
                sa.select(table.c.time, table.c.actor, table.c.action, table.c.target, table.c.detail)
                .order_by(table.c.id.desc())
                .limit(max(1, min(limit, MAX_LIST)))
            ).mappings()
            return [dict(row) for row in rows]

    # --- maintenance windows ---------------------------------------------------------------------

    def add_window(
        self,
        *,
        scope: str,
        target: str,
        starts_at: float,
        ends_at: float,
        weekly: bool,
        reason: str,
        actor: str,
        now: float,
    ) -> MaintenanceWindow:
        """Store a maintenance window (checked by the caller) and audit it; returns it."""
        values = {
            "scope": scope,
            "target": target,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "weekly": weekly,
            "reason": reason,
            "created_by": actor,
            "created_at": now,
        }
        with self._write("add_window") as connection:
            window_id = connection.execute(
                schema.maintenance_windows.insert().values(values).returning(schema.maintenance_windows.c.id)
            ).scalar_one()
            detail = json.dumps({k: values[k] for k in ("starts_at", "ends_at", "weekly", "reason")})
            _audit(connection, now, actor, "maintenance.add", f"{scope}:{target}", detail)
        return MaintenanceWindow(id=window_id, **values)  # type: ignore[arg-type]

    def windows(self) -> list[MaintenanceWindow]:
        """Every stored window, oldest first."""
        table = schema.maintenance_windows
        with self._read("windows") as connection:
            rows = connection.execute(sa.select(table).order_by(table.c.id)).mappings()
            return [_window(row) for row in rows]

    def delete_window(self, window_id: int, *, actor: str, now: float) -> None:
        """Delete a window (ending it now) and audit it. Raises WindowNotFound."""
        table = schema.maintenance_windows
        with self._write("delete_window") as connection:
            row = connection.execute(sa.select(table).where(table.c.id == window_id)).mappings().first()
            if row is None:
                raise WindowNotFound(window_id)
            connection.execute(table.delete().where(table.c.id == window_id))
            _audit(connection, now, actor, "maintenance.delete", f"{row['scope']}:{row['target']}", None)

    # --- plumbing --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _read(self, operation: str) -> Iterator[Connection]:
        try:
            with self._engine.connect() as connection:
                yield connection
        except SQLAlchemyError as e:
            raise StoreError(operation, _detail(e)) from e

    @contextlib.contextmanager
    def _write(self, operation: str) -> Iterator[Connection]:
        try:
            with self._write_lock, self._engine.begin() as connection:
                yield connection
        except SQLAlchemyError as e:
            raise StoreError(operation, _detail(e)) from e


def _engine(url: sa.URL, dialect: str) -> Engine:
    if dialect == "postgresql":
        return sa.create_engine(
            url,
            pool_pre_ping=True,
            pool_size=2,
            connect_args={"connect_timeout": 5, "options": f"-c statement_timeout={POSTGRES_STATEMENT_MS}"},
        )
    if dialect != "sqlite":
        raise StoreError("open", f"unsupported database {dialect!r} (use sqlite or postgresql)")
    database = url.database or ""
    if database in ("", ":memory:"):
        engine = sa.create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        engine = sa.create_engine(url)

    # SQLAlchemy's documented recipe: let SQLAlchemy, not the driver, begin transactions, and begin
    # them IMMEDIATE so the write lock is taken (or waited for) before the first read.
    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _event(
    connection: Connection, alert_id: int, now: float, kind: str, actor: str | None, detail: str | None
) -> None:
    connection.execute(
        schema.alert_events.insert().values(
            alert_id=alert_id, time=now, kind=kind, actor=actor, detail=detail
        )
    )


def _audit(
    connection: Connection, now: float, actor: str, action: str, target: str, detail: str | None
) -> None:
    connection.execute(
        schema.alert_audit.insert().values(time=now, actor=actor, action=action, target=target, detail=detail)
    )


def _alert(row: Any) -> AlertRecord:
    return AlertRecord(
        id=int(row["id"]),
        machine_id=row["machine_id"],
        rule=row["rule"],
        state=row["state"],
        severity=row["severity"],
        level=row["level"],
        reason=row["reason"],
        site=row["site"],
        labels={str(k): str(v) for k, v in json.loads(row["labels_json"] or "{}").items()},
        started_at=float(row["started_at"]),
        fired_at=float(row["fired_at"]),
        acknowledged_at=row.get("acknowledged_at"),
        acknowledged_by=row.get("acknowledged_by"),
        ack_reason=row.get("ack_reason"),
        resolved_at=row.get("resolved_at"),
        last_notified_at=row.get("last_notified_at"),
    )


def _window(row: Any) -> MaintenanceWindow:
    return MaintenanceWindow(
        id=int(row["id"]),
        scope=row["scope"],
        target=row["target"],
        starts_at=float(row["starts_at"]),
        ends_at=float(row["ends_at"]),
        weekly=bool(row["weekly"]),
        reason=row["reason"],
        created_by=row["created_by"],
        created_at=float(row["created_at"]),
    )


def _detail(error: BaseException) -> str:
    cause: BaseException = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return ("; ".join(lines[:2]) if lines else type(cause).__name__)[:300]
