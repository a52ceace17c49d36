"""Compact samples: integer milliseconds keyed (series_id, time_ms), WITHOUT ROWID on SQLite; rollups.

Every existing sample is copied (time rounded to the millisecond), then the per-minute and per-hour
rollups are built from them, so the history of an upgraded database is whole. The old index on
time goes with the old table: retention now deletes series by series along the primary key.

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ROLLUPS = {"rollup_minute": 60_000, "rollup_hour": 3_600_000}


def _samples_table(name: str, time_column: sa.Column[object]) -> None:
    op.create_table(
        name,
        sa.Column("series_id", sa.Integer, nullable=False),
        time_column,
        sa.Column("value", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("series_id", time_column.name, name=f"pk_{name}"),
        sqlite_with_rowid=False,
    )


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    _samples_table("samples_compact", sa.Column("time_ms", sa.BigInteger, nullable=False))
    to_ms = "CAST(round(time * 1000) AS INTEGER)" if sqlite else "round(time * 1000)::bigint"
    # Two samples of one series less than half a millisecond apart become one (the first kept).
    op.execute(
        f"INSERT INTO samples_compact (series_id, time_ms, value) SELECT series_id, {to_ms}, value "
        "FROM samples WHERE true ORDER BY series_id, time ON CONFLICT DO NOTHING"
    )
    op.drop_table("samples")
    op.rename_table("samples_compact", "samples")
    if not sqlite:
        op.execute("ALTER TABLE samples RENAME CONSTRAINT pk_samples_compact TO pk_samples")
    for table, width in _ROLLUPS.items():
        op.create_table(
            table,
            sa.Column("series_id", sa.Integer, nullable=False),
            sa.Column("bucket_ms", sa.BigInteger, nullable=False),
            sa.Column("min", sa.Double, nullable=False),
            sa.Column("max", sa.Double, nullable=False),
            sa.Column("sum", sa.Double, nullable=False),
            sa.Column("count", sa.BigInteger, nullable=False),
            sa.PrimaryKeyConstraint("series_id", "bucket_ms", name=f"pk_{table}"),
            sqlite_with_rowid=False,
        )
        op.execute(
            f"INSERT INTO {table} (series_id, bucket_ms, min, max, sum, count) "
            f"SELECT series_id, time_ms - time_ms % {width}, min(value), max(value), sum(value), count(*) "
            "FROM samples GROUP BY 1, 2"
        )


def downgrade() -> None:
    for table in _ROLLUPS:
        op.drop_table(table)
    op.create_table(
        "samples_wide",
        sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id", ondelete="CASCADE"), nullable=False),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("series_id", "time", name="pk_samples_wide"),
    )
    op.execute(
        "INSERT INTO samples_wide (series_id, time, value) "
        "SELECT series_id, time_ms / 1000.0, value FROM samples"
    )
    op.drop_table("samples")
    op.rename_table("samples_wide", "samples")
    if op.get_bind().dialect.name != "sqlite":
        op.execute("ALTER TABLE samples RENAME CONSTRAINT pk_samples_wide TO pk_samples")
    op.create_index("ix_samples_time", "samples", ["time"])
