"""PostgreSQL: a BRIN index on `samples.time_ms`, so a minute's rollups read that minute's rows only.

The rollups of a minute are built from its samples (revision 0009). Keyed (series_id, time_ms), the
table offers no way to a time range but one index seek per series or a scan of the whole table;
the planner took the scan (it grows with the table: ~0.5 s a minute at 2.4 million rows). Rows are
appended in about time order, so a BRIN index (a few pages, next to nothing per insert) narrows a
minute to the last few megabytes of the table. SQLite has no BRIN: nothing changes there. No row
is touched: the index is built from the existing samples.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

INDEX = "ix_samples_time_brin"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # 32 pages (256 kB, ~5,000 samples) a range: a minute of 1,000 machines is ~50 ranges.
    # autosummarize: autovacuum summarizes a range once it is full; a build also does (store_bulk.py).
    op.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON samples USING brin (time_ms) "
        "WITH (pages_per_range = 32, autosummarize = on)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP INDEX IF EXISTS {INDEX}")
