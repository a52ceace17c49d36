"""The alerting tables (SQLAlchemy Core), created by the Alembic revision 0007_alerts.

- `alerts`: one row per alert (a machine's rule whose condition held for its `for:`), with its
  state `firing` → `acknowledged` → `resolved` and who acknowledged it, when and why.
- `alert_events`: an alert's history (fired, notified, acknowledged, resolved, notification failed).
- `maintenance_windows`: machines, sites or labels that send nothing for a while (or every week).
- `alert_audit`: who did what to alerts and windows (acknowledge, window added or deleted).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("machine_id", sa.String(200), nullable=False),
    sa.Column("rule", sa.String(100), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("level", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("site", sa.String(200), nullable=True),
    sa.Column("labels_json", sa.Text, nullable=False),
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("fired_at", sa.Double, nullable=False),
    sa.Column("acknowledged_at", sa.Double, nullable=True),
    sa.Column("acknowledged_by", sa.String(200), nullable=True),
    sa.Column("ack_reason", sa.Text, nullable=True),
    sa.Column("resolved_at", sa.Double, nullable=True),
    sa.Column("last_notified_at", sa.Double, nullable=True),
    sa.Index("ix_alerts_state", "state"),
    sa.Index("ix_alerts_machine_rule", "machine_id", "rule"),
)

alert_events = sa.Table(
    "alert_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("time", sa.Double, nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("actor", sa.String(200), nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Index("ix_alert_events_alert", "alert_id"),
)

maintenance_windows = sa.Table(
    "maintenance_windows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("scope", sa.String(20), nullable=False),
    sa.Column("target", sa.String(400), nullable=False),
    sa.Column("starts_at", sa.Double, nullable=False),
    sa.Column("ends_at", sa.Double, nullable=False),
    sa.Column("weekly", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
)

alert_audit = sa.Table(
    "alert_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", sa.Double, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(50), nullable=False),
    sa.Column("target", sa.String(400), nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
)
