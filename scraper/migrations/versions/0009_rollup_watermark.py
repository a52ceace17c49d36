"""Rollups built in SQL from minutes that are over: `rollup_state` holds how far they are built.

Until now every new sample was merged into the rollups by the process that wrote it (gathered in
memory, merged every minute and at close). From now on the minutes before `rolled_up_to_ms` (and
the hours before its hour) are built, the rest is built from the stored samples as minutes end.
The existing samples were all merged already: the watermark starts after the newest one's minute,
so none is counted twice (its hour, still open, is rebuilt whole from its minutes when it ends).
Every scraper process must run this version: an older one would still merge its own samples.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_MINUTE_MS = 60_000
_HOUR_MS = 3_600_000


def upgrade() -> None:
    op.create_table(
        "rollup_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("rolled_up_to_ms", sa.BigInteger, nullable=False),
    )
    # The newest sample: one seek to the end of each series' key range, not a scan of the table.
    op.execute(
        "INSERT INTO rollup_state (id, rolled_up_to_ms) "
        f"SELECT 1, coalesce(newest - newest % {_MINUTE_MS} + {_MINUTE_MS}, 0) FROM "
        "(SELECT max((SELECT max(time_ms) FROM samples WHERE series_id = series.id)) AS newest "
        "FROM series) AS s"
    )


def downgrade() -> None:
    # Revision 0008's code merges only the samples it writes itself: the rollups of the samples
    # after the watermark are built (from the samples, whole) before the table goes.
    bind = op.get_bind()
    watermark = bind.execute(sa.text("SELECT rolled_up_to_ms FROM rollup_state WHERE id = 1")).scalar() or 0
    for table, width in (("rollup_minute", _MINUTE_MS), ("rollup_hour", _HOUR_MS)):
        start = watermark - watermark % width
        bind.execute(sa.text(f"DELETE FROM {table} WHERE bucket_ms >= :start"), {"start": start})
        bind.execute(
            sa.text(
                f"INSERT INTO {table} (series_id, bucket_ms, min, max, sum, count) "
                f"SELECT x.series_id, x.time_ms - x.time_ms % {width}, min(x.value), max(x.value), "
                "sum(x.value), count(*) FROM series s JOIN samples x ON x.series_id = s.id "
                "WHERE x.time_ms >= :start GROUP BY 1, 2"
            ),
            {"start": start},
        )
    op.drop_table("rollup_state")
