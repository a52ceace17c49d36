"""Initial tables: series, samples, machine_state.

Revision ID: 0001
Revises:
Create Date: 2025-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "series",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("machine_id", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(200), nullable=False),
        sa.Column("labels_json", sa.Text, nullable=False),
        sa.UniqueConstraint("machine_id", "metric", "labels_json", name="uq_series_machine_metric_labels"),
    )
    op.create_table(
        "samples",
        sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id", ondelete="CASCADE"), nullable=False),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("series_id", "time", name="pk_samples"),
    )
    op.create_table(
        "machine_state",
        sa.Column("machine_id", sa.String(200), primary_key=True),
        sa.Column("view_json", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("machine_state")
    op.drop_table("samples")
    op.drop_table("series")
